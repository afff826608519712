//! Billing for streams: what the upstream reported ([`Tally`]), and, for streams that pass
//! through in the client's own API, a [`Meter`] that watches the events on the side.

use super::Decoder;
use crate::error::ApiError;
use crate::formats::framing::sse::SseDecoder;
use crate::formats::openai::stream::ChunkDecoder;
use crate::formats::openai::template::{find_null_usage, NULL_USAGE};
use crate::formats::{Delta, Format, Usage};
use bytes::BytesMut;

/// What a stream has produced so far: the provider's latest usage report, and the bytes of
/// generated text and tool arguments that passed (the estimate when the report never came).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub usage: Option<Usage>,
    pub generated_bytes: u64,
}

impl Tally {
    pub(super) fn see(&mut self, d: &Delta<'_>) {
        let n = match d {
            Delta::Usage(u) => {
                self.usage = Some(*u);
                return;
            }
            Delta::Text(t) | Delta::Reasoning(t) => t.literal().len(),
            Delta::ToolCall { name, .. } => name.literal().len(),
            Delta::ToolArgs { json, .. } => json.literal().len(),
            _ => return,
        };
        // Less the two quotes of the literal.
        self.generated_bytes += n.saturating_sub(2) as u64;
    }
}

/// Watches a stream that passes through unchanged. One exception: an OpenAI stream whose
/// usage chunk the gateway asked for and the client did not is re-framed without that chunk.
/// OpenAI streams, the most common, have their own decoder here so that a plain content chunk
/// is read without serde (`ChunkDecoder::plain_text_len`).
pub struct Meter {
    inner: Inner,
    /// The upstream's own end of stream was seen (`[DONE]`, `message_stop`, a Responses
    /// terminal event): without it a clean end of the body is a cut stream.
    ended: bool,
}

enum Inner {
    Watch(Decoder, Tally),
    /// `strip`: re-framed without the usage chunk.
    OpenAi {
        sse: SseDecoder,
        dec: ChunkDecoder,
        tally: Tally,
        strip: bool,
    },
}

impl Meter {
    /// `strip_usage`: the client did not ask for OpenAI's usage chunk (the gateway did).
    pub fn new(format: Format, strip_usage: bool) -> Meter {
        let inner = match format {
            Format::OpenAi => Inner::OpenAi {
                sse: SseDecoder::default(),
                dec: ChunkDecoder::default(),
                tally: Tally::default(),
                strip: strip_usage,
            },
            _ => Inner::Watch(Decoder::new(format), Tally::default()),
        };
        Meter {
            inner,
            ended: false,
        }
    }

    /// Whether the stream's own terminal event has passed.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Whether chunks must be replaced by what [`Self::push`] writes to `out`.
    pub fn rewrites(&self) -> bool {
        matches!(self.inner, Inner::OpenAi { strip: true, .. })
    }

    /// Watches `chunk`. When [`Self::rewrites`], appends the events to pass on to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut BytesMut) -> Result<(), ApiError> {
        let ended = &mut self.ended;
        match &mut self.inner {
            Inner::Watch(dec, tally) => dec.push(chunk, &mut |d| {
                *ended |= matches!(d, Delta::Done);
                tally.see(&d)
            }),
            Inner::OpenAi {
                sse,
                dec,
                tally,
                strip,
            } => sse.push(chunk, |ev| {
                // A plain content chunk (nearly every one) is read without serde.
                if let Some((n, null_usage)) = dec.plain_text_len(ev.data) {
                    tally.generated_bytes += n as u64;
                    if *strip {
                        reframe(ev.data, null_usage.find(ev.data), out);
                    }
                    return Ok(());
                }
                let mut usage_only = None;
                dec.event(ev.data, &mut |d| {
                    let only = matches!(d, Delta::Usage(_));
                    usage_only = Some(usage_only.unwrap_or(true) && only);
                    *ended |= matches!(d, Delta::Done);
                    tally.see(&d);
                })?;
                if *strip && usage_only != Some(true) {
                    reframe(ev.data, find_null_usage(ev.data), out);
                }
                Ok(())
            }),
        }
    }

    /// The `sequence_number` an event added after those seen takes (Responses streams).
    pub fn next_sequence(&self) -> u64 {
        match &self.inner {
            Inner::Watch(dec, _) => dec.last_sequence().map_or(0, |n| n + 1),
            Inner::OpenAi { .. } => 0,
        }
    }

    pub fn tally(&self) -> Tally {
        match &self.inner {
            Inner::Watch(_, t) | Inner::OpenAi { tally: t, .. } => *t,
        }
    }
}

/// The event passed on, as the client would have had it without `include_usage` (its
/// `,"usage":null`, which OpenAI adds to every chunk then, at `null_usage`).
fn reframe(data: &[u8], null_usage: Option<usize>, out: &mut BytesMut) {
    out.extend_from_slice(b"data: ");
    match null_usage.filter(|&i| i + NULL_USAGE.len() <= data.len()) {
        Some(i) => {
            out.extend_from_slice(&data[..i]);
            out.extend_from_slice(&data[i + NULL_USAGE.len()..]);
        }
        None => out.extend_from_slice(data),
    }
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAI: &str = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
        "data: [DONE]\n\n"
    );

    fn run(m: &mut Meter, input: &str, piece: usize) -> String {
        let mut out = BytesMut::new();
        for c in input.as_bytes().chunks(piece) {
            m.push(c, &mut out).unwrap();
        }
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn strips_only_the_usage_chunk_and_keeps_its_counts() {
        for piece in [1, 7, 1000] {
            let mut m = Meter::new(Format::OpenAi, true);
            let out = run(&mut m, OPENAI, piece);
            assert!(
                !out.contains("prompt_tokens") && !out.contains("usage"),
                "{out}"
            );
            assert_eq!(out.matches("data: ").count(), 3);
            assert!(out.ends_with("data: [DONE]\n\n"));
            let t = m.tally();
            assert_eq!(t.usage.map(|u| (u.input, u.output)), Some((9, 2)));
            assert_eq!(t.generated_bytes, 5);
            assert!(m.ended(), "[DONE] was seen");
        }
    }

    /// The meter as it was before content chunks were read without serde: every event
    /// through the decoder (the oracle of the test below).
    fn by_decoder(input: &[u8], strip: bool) -> (Vec<u8>, Tally, bool, bool) {
        let (mut sse, mut dec) = (SseDecoder::default(), ChunkDecoder::default());
        let (mut tally, mut ended, mut out) = (Tally::default(), false, BytesMut::new());
        let r = sse.push(input, |ev| -> Result<(), ApiError> {
            let mut usage_only = None;
            dec.event(ev.data, &mut |d| {
                usage_only = Some(usage_only.unwrap_or(true) && matches!(d, Delta::Usage(_)));
                ended |= matches!(d, Delta::Done);
                tally.see(&d);
            })?;
            if strip && usage_only != Some(true) {
                reframe(ev.data, find_null_usage(ev.data), &mut out);
            }
            Ok(())
        });
        (out.to_vec(), tally, ended, r.is_err())
    }

    fn chunk_event() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let text = prop_oneof![
            4 => "[a-z \"\\\\\n\u{e9}]{0,8}".prop_map(serde_json::Value::from),
            1 => Just(serde_json::Value::Null),
            1 => Just(serde_json::json!(7)),
        ];
        let delta = (
            proptest::option::of(text.clone()),
            proptest::option::of(text.clone()),
            proptest::option::of(text),
            proptest::option::weighted(
                0.1,
                Just(serde_json::json!([{"index": 0, "id": "c1",
                "function": {"name": "f", "arguments": "{}"}}])),
            ),
        )
            .prop_map(|(c, rc, r, tc)| {
                let mut d = serde_json::json!({"role": "assistant"});
                for (k, v) in ["content", "reasoning_content", "reasoning", "tool_calls"]
                    .into_iter()
                    .zip([c, rc, r, tc])
                {
                    if let Some(v) = v {
                        d[k] = v;
                    }
                }
                d
            });
        let choices = prop_oneof![
            6 => delta.prop_map(|d| serde_json::json!([{"index": 0, "delta": d,
                "logprobs": null, "finish_reason": null}])),
            1 => Just(serde_json::json!([])),
            1 => Just(serde_json::Value::Null),
            1 => Just(serde_json::json!([{"delta": {"content": "a"}, "finish_reason": "stop"},
                {"delta": 5}])),
        ];
        let usage = prop_oneof![
            6 => Just(serde_json::Value::Null),
            1 => Just(serde_json::json!({"prompt_tokens": 3, "completion_tokens": 2})),
        ];
        let raw = prop_oneof![
            Just("[DONE]".to_string()),
            Just(r#"{"id":"a","id":"b","choices":[]}"#.to_string()),
            Just(r#"{"ch\u006fices":[{"delta":{"content":"x"}}]}"#.to_string()),
            Just("{\"choices\":[{\"delta\":{\"content\":\"a\u{1}\"}}]}".to_string()),
            Just(r#"{"error":{"message":"overloaded","type":"overloaded_error"}}"#.to_string()),
            Just(r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#.to_string()),
        ];
        let id = prop_oneof![
            Just(serde_json::json!("chatcmpl-1")),
            Just(serde_json::json!(""))
        ];
        // OpenAI's padding, different in every chunk (a quote or backslash now and then).
        let pad = proptest::option::of("[a-zA-Z0-9\"\\\\]{0,6}");
        prop_oneof![
            8 => (id, choices, usage, pad).prop_map(|(id, ch, u, pad)| {
                let mut c = serde_json::json!({"id": id, "object": "chat.completion.chunk",
                    "choices": ch, "usage": u});
                if let Some(p) = pad {
                    c["obfuscation"] = p.into();
                }
                c.to_string()
            }),
            1 => raw,
        ]
    }

    proptest::proptest! {
        /// Over streams of chunks of every shape, split anywhere, the meter writes, counts and
        /// fails exactly as it did with every event through the decoder.
        #[test]
        fn content_chunks_read_without_serde_meter_as_the_decoder_did(
            events in proptest::collection::vec(chunk_event(), 0..12),
            piece in 1usize..64,
            strip in proptest::bool::ANY,
        ) {
            let input: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
            let (want, tally, ended, failed) = by_decoder(input.as_bytes(), strip);
            let mut m = Meter::new(Format::OpenAi, strip);
            let mut out = BytesMut::new();
            let mut err = false;
            for c in input.as_bytes().chunks(piece) {
                if m.push(c, &mut out).is_err() {
                    err = true;
                    break;
                }
            }
            proptest::prop_assert_eq!(err, failed);
            if !failed {
                proptest::prop_assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
                proptest::prop_assert_eq!(m.tally(), tally);
                proptest::prop_assert_eq!(m.ended(), ended);
            }
        }
    }

    #[test]
    fn watching_writes_nothing_and_counts() {
        let mut m = Meter::new(Format::OpenAi, false);
        assert!(!m.rewrites());
        assert_eq!(run(&mut m, OPENAI, 3), "");
        assert_eq!(m.tally().usage.map(|u| u.total()), Some(11));
        assert!(m.ended());
        let mut cut = Meter::new(Format::OpenAi, false);
        run(
            &mut cut,
            &OPENAI[..OPENAI.len() - "data: [DONE]\n\n".len()],
            3,
        );
        assert!(!cut.ended(), "a stream without [DONE] has not ended");
    }

    #[test]
    fn anthropic_usage_combines_start_and_delta() {
        let s = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"x\",\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"abcd\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n",
        );
        let mut m = Meter::new(Format::Anthropic, false);
        run(&mut m, s, 5);
        let u = m.tally().usage.unwrap();
        assert_eq!((u.input, u.cached_input, u.output), (8, 3, 7));
        assert_eq!(m.tally().generated_bytes, 4);
    }
}
