//! Admission: find the `model` to route by without a full parse (the body checked as it is
//! skipped, the model borrowed in place: `formats::strict`, or serde's derive for what that
//! leaves to it), and splice a target's model override into the body.

use crate::error::ApiError;
use crate::formats::strict;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::ops::Range;

/// What routing needs from a request body.
#[derive(Debug)]
pub struct Probe {
    pub model: String,
    /// Byte range of the `model` value (with its quotes) in the body, for the override splice.
    pub model_span: Range<usize>,
    pub stream: bool,
    /// `stream_options` is present (`include_usage` says whether usage was asked for).
    pub has_stream_options: bool,
    /// OpenAI's `stream_options.include_usage`.
    pub include_usage: bool,
    /// The output cap the client set (`max_tokens`, `max_completion_tokens`,
    /// `max_output_tokens`), for the limits' reservation.
    pub max_tokens: Option<u64>,
}

pub fn probe(body: &[u8]) -> Result<Probe, ApiError> {
    match plain(body) {
        Some(p) => Ok(p),
        None => through_serde(body),
    }
}

/// The probe of a body `strict` reads (one in plain JSON, a plain `model` string, no field
/// repeated): what [`through_serde`] would give, in about a quarter of the instructions.
fn plain(body: &[u8]) -> Option<Probe> {
    let mut f: [Option<&str>; 6] = [None; 6];
    strict::members(body, |key, raw| {
        let at = match key {
            b"model" => 0,
            b"stream" => 1,
            b"stream_options" => 2,
            b"max_tokens" => 3,
            b"max_completion_tokens" => 4,
            b"max_output_tokens" => 5,
            _ => return Some(()),
        };
        // A repeated field is serde's error to name; so is a value that is not UTF-8 (serde
        // borrows each of these as text, while it skips other values' bytes unread).
        f[at].is_none().then_some(())?;
        // `null` reads as absent (serde's `Option`), but still counts as seen.
        f[at] = Some(std::str::from_utf8(raw).ok()?);
        Some(())
    })?;
    let [model, stream, options, max, max_completion, max_output] =
        f.map(|v| v.filter(|raw| *raw != "null"));
    let raw = model?;
    let model = strict::plain_string(raw.as_bytes()).filter(|m| !m.is_empty())?;
    let start = raw.as_ptr() as usize - body.as_ptr() as usize;
    let number = |v: Option<&str>| v.and_then(|v| v.parse().ok());
    Some(Probe {
        model: model.to_string(),
        model_span: start..start + raw.len(),
        stream: stream == Some("true"),
        has_stream_options: options.is_some(),
        include_usage: options.is_some_and(include_usage),
        max_tokens: number(max_completion)
            .or(number(max))
            .or(number(max_output)),
    })
}

/// `stream_options.include_usage`, leniently (anything but an object holding `true` is no).
fn include_usage(raw: &str) -> bool {
    #[derive(Deserialize)]
    struct Options {
        include_usage: Option<bool>,
    }
    serde_json::from_str::<Options>(raw).is_ok_and(|o| o.include_usage == Some(true))
}

/// The probe through serde's derive: any body, and the error for one that is not JSON or
/// has no usable `model`.
fn through_serde(body: &[u8]) -> Result<Probe, ApiError> {
    #[derive(Deserialize)]
    struct Fields<'a> {
        #[serde(borrow)]
        model: Option<&'a RawValue>,
        // Raw, so a wrongly typed value is left for the provider's or translator's own error.
        #[serde(borrow)]
        stream: Option<&'a RawValue>,
        #[serde(borrow)]
        stream_options: Option<&'a RawValue>,
        #[serde(borrow)]
        max_tokens: Option<&'a RawValue>,
        #[serde(borrow)]
        max_completion_tokens: Option<&'a RawValue>,
        #[serde(borrow)]
        max_output_tokens: Option<&'a RawValue>,
    }
    let number = |v: Option<&RawValue>| v.and_then(|v| v.get().parse::<u64>().ok());
    let fields: Fields<'_> = serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::bad_request("The request body must be a JSON object."),
            _ => ApiError::invalid_json(format!(
                "We could not parse the JSON body of your request: {e}"
            )),
        }
    })?;
    let raw = fields.model.ok_or_else(|| {
        ApiError::bad_request("You must provide a model parameter.").with_param("model")
    })?;
    let text = raw.get();
    let model: Cow<'_, str> = if text.starts_with('"') {
        serde_json::from_str(text).map_err(|_| ApiError::invalid_json("Invalid `model` string."))?
    } else {
        return Err(ApiError::bad_request("`model` must be a string.").with_param("model"));
    };
    if model.is_empty() {
        return Err(ApiError::bad_request("`model` must not be empty.").with_param("model"));
    }
    // RawValue borrows from `body`, so its offset is the pointer difference.
    let start = text.as_ptr() as usize - body.as_ptr() as usize;
    Ok(Probe {
        model: model.into_owned(),
        model_span: start..start + text.len(),
        stream: fields.stream.is_some_and(|v| v.get() == "true"),
        has_stream_options: fields.stream_options.is_some_and(|v| v.get() != "null"),
        include_usage: (fields.stream_options).is_some_and(|o| include_usage(o.get())),
        max_tokens: number(fields.max_completion_tokens)
            .or(number(fields.max_tokens))
            .or(number(fields.max_output_tokens)),
    })
}

/// The body with the `model` value replaced by `model`.
pub fn with_model(body: &Bytes, span: &Range<usize>, model: &str) -> Bytes {
    let quoted = serde_json::to_string(model).unwrap_or_else(|_| String::from("\"\""));
    let mut out = BytesMut::with_capacity(body.len() - span.len() + quoted.len());
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&body[span.end..]);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_model_anywhere() {
        let b = br#"{"messages":[{"role":"user","content":"hi \"model\""}],"model":"gpt-4o","stream":true}"#;
        let p = probe(b).unwrap();
        assert_eq!(p.model, "gpt-4o");
        assert_eq!(&b[p.model_span.clone()], br#""gpt-4o""#);
    }

    #[test]
    fn reads_stream_usage_and_output_cap_leniently() {
        let p = probe(br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":50}"#).unwrap();
        assert!(p.stream && p.has_stream_options && p.include_usage);
        assert_eq!(p.max_tokens, Some(50));
        let p = probe(br#"{"model":"m","stream":"yes","stream_options":{},"max_completion_tokens":7,"max_tokens":9}"#).unwrap();
        assert!(!p.stream && p.has_stream_options && !p.include_usage);
        assert_eq!(p.max_tokens, Some(7));
        let p = probe(br#"{"model":"m","stream_options":null,"max_tokens":-1}"#).unwrap();
        assert!(!p.has_stream_options);
        assert_eq!(p.max_tokens, None);
    }

    #[test]
    fn escaped_model_is_decoded() {
        let p = probe(br#"{"model":"a\u0062c"}"#).unwrap();
        assert_eq!(p.model, "abc");
    }

    #[test]
    fn errors() {
        assert_eq!(
            probe(b"{").unwrap_err().code.as_deref(),
            Some("invalid_json")
        );
        assert_eq!(probe(b"[1]").unwrap_err().status, 400);
        assert_eq!(probe(b"{}").unwrap_err().param.as_deref(), Some("model"));
        assert_eq!(
            probe(br#"{"model":3}"#).unwrap_err().param.as_deref(),
            Some("model")
        );
        assert_eq!(
            probe(br#"{"model":""}"#).unwrap_err().param.as_deref(),
            Some("model")
        );
        assert!(probe(b"").is_err());
        // Bytes that are not UTF-8 inside a field serde borrows as text (found by the property
        // test below), and inside one it skips unread.
        assert!(probe(b"{\"model\":\"a\",\"stream_options\":{\"\xffx\": true}}").is_err());
        assert!(probe(b"{\"model\":\"a\",\"input\":[\"\xff\"]}").is_ok());
    }

    /// The fast path reads what a chat, Responses or Messages client sends.
    #[test]
    fn plain_bodies_take_the_fast_path() {
        for body in [
            &br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi\n\u00e9"}],"temperature":0.2}"#[..],
            br#" { "model" : "claude", "max_tokens": 1024, "stream": true, "system": [], "tools": [{"x": -1.5e-3}] } "#,
            br#"{"input":"hi","model":"gpt-4o","stream_options":{"include_usage":true},"stream":null}"#,
        ] {
            let fast = plain(body).expect("read by the fast path");
            assert_eq!(format!("{fast:?}"), format!("{:?}", through_serde(body).unwrap()));
        }
    }

    /// A value for one of the probe's fields, or any other: well-formed or not.
    fn field_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            Just("\"yes\"".to_string()),
            Just("{\"include_usage\": true}".to_string()),
            Just("{\"include_usage\": 1}".to_string()),
            Just("[]".to_string()),
            // Not JSON, each in its own way.
            prop::sample::select(vec![
                "01",
                "-01",
                "1.",
                "-",
                ".5",
                "+1",
                "1e",
                "1e+",
                "tru",
                "nul",
                "\"\u{1}\"",
                "\"\\x\"",
                "\"\\u12g4\"",
                "[1 2]",
                "[1,]",
                "{\"a\"}",
                "{\"a\":1,}",
                "\"open",
            ])
            .prop_map(str::to_string),
            "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
            "\"([a-z0-9 é\\-]|\\\\[nt\"/\\\\]|\\\\u00[0-9a-f]{2}|\\\\ud800){0,12}\"",
            "\\[(\"[a-z]{0,4}\"|[0-9]|\\{\\}|null)(, ?(\"[a-z]{0,4}\"|[0-9]))*\\]",
        ]
    }

    /// A body of fields the probe reads and others (a `model` always, mostly a plain string),
    /// sometimes with a field twice, sometimes broken by one edit.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let keys = vec![
            "stream",
            "stream_options",
            "max_tokens",
            "max_completion_tokens",
            "max_output_tokens",
            "messages",
            "input",
            "mod\\u0065l",
        ];
        let model = prop_oneof![4 => "\"[a-z0-9.-]{0,8}\"", 1 => field_value()];
        let others = prop::sample::subsequence(keys, 0..=8).prop_flat_map(|ks| {
            ks.into_iter()
                .map(|k| (Just(k), field_value()))
                .collect::<Vec<_>>()
        });
        let edit = (
            0..4u8,
            any::<prop::sample::Index>(),
            prop_oneof![
                Just(b'"'),
                Just(b','),
                Just(b'}'),
                Just(b'{'),
                Just(b'\\'),
                Just(b'0'),
                Just(1u8),
                Just(0xff),
            ],
        );
        (
            model,
            others,
            any::<prop::sample::Index>(),
            "[ \n]{0,2}",
            edit,
        )
            .prop_map(|(model, mut members, at, ws, (edit, i, byte))| {
                let twice = members.first().cloned().filter(|_| edit == 2);
                members.insert(at.index(members.len() + 1), ("model", model));
                members.extend(twice);
                let fields: Vec<_> = (members.iter())
                    .map(|(k, v)| format!("{ws}\"{k}\"{ws}:{ws}{v}"))
                    .collect();
                let mut b = format!("{{{}}}", fields.join(",")).into_bytes();
                let i = i.index(b.len());
                match edit {
                    0 => drop(b.remove(i)),
                    1 => b.insert(i, byte),
                    _ => {}
                }
                b
            })
    }

    proptest! {
        /// What the fast path reads is what serde reads; what serde refuses, it leaves.
        #[test]
        fn the_fast_path_reads_as_serde_reads(body in body()) {
            let slow = through_serde(&body);
            if let Some(fast) = plain(&body) {
                prop_assert!(slow.is_ok(), "fast path read {fast:?}; serde: {slow:?}");
                prop_assert_eq!(format!("{fast:?}"), format!("{:?}", slow.unwrap()));
            }
        }
    }

    #[test]
    fn override_splices_only_the_value() {
        let body = Bytes::from_static(br#"{"model": "a", "x": "model"}"#);
        let p = probe(&body).unwrap();
        let out = with_model(&body, &p.model_span, "llama\"3");
        assert_eq!(&out[..], br#"{"model": "llama\"3", "x": "model"}"#);
    }
}
