//! AWS event-stream framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! ConverseStream sends it: binary messages of a 12-byte prelude (total length, headers
//! length, prelude CRC), headers, a payload and a message CRC. [`FrameDecoder`] buffers bytes as
//! they arrive, refuses a frame larger than its limit as soon as the prelude names its length,
//! and hands each complete frame to `aws-smithy-eventstream`, which checks both CRCs and the
//! header encoding.

use crate::error::ApiError;
use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_types::event_stream::Message;
use bytes::BytesMut;

/// Bedrock's frames are small (an event each); the SDKs accept payloads up to 24 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

const PRELUDE: usize = 12;
/// Prelude and message CRC: the smallest frame.
const OVERHEAD: usize = 16;

/// One decoded frame, borrowed from its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// `:message-type`: `event`, `exception` or `error`.
    pub message_type: &'a str,
    /// `:event-type`, `:exception-type` or `:error-code`, by message type.
    pub kind: &'a str,
    pub payload: &'a [u8],
    /// `:error-message`, on `error` frames.
    pub error_message: Option<&'a str>,
}

impl<'a> Frame<'a> {
    fn of(m: &'a Message) -> Frame<'a> {
        let header = |name: &str| {
            m.headers()
                .iter()
                .find(|h| h.name().as_str() == name)
                .and_then(|h| h.value().as_string().ok())
                .map(|s| s.as_str())
        };
        let message_type = header(":message-type").unwrap_or("event");
        let kind = match message_type {
            "exception" => header(":exception-type"),
            "error" => header(":error-code"),
            _ => header(":event-type"),
        };
        Frame {
            message_type,
            kind: kind.unwrap_or(""),
            payload: m.payload(),
            error_message: header(":error-message"),
        }
    }
}

/// Incremental decoder: bytes in any pieces, frames out.
pub struct FrameDecoder {
    buf: BytesMut,
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME)
    }
}

fn unreadable(why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_upstream(format!("The upstream event stream is unreadable: {why}."))
}

impl FrameDecoder {
    pub fn new(max_frame_bytes: usize) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            max: max_frame_bytes,
        }
    }

    /// Feeds bytes as they arrive; calls `on_frame` for every complete frame. An error (a bad
    /// CRC, a frame over the limit, or `on_frame`'s own) stops decoding.
    pub fn push(
        &mut self,
        chunk: &[u8],
        mut on_frame: impl FnMut(&Frame<'_>) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        self.buf.extend_from_slice(chunk);
        while self.buf.len() >= PRELUDE {
            let total = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
            let total = total as usize;
            if total < OVERHEAD {
                return Err(unreadable(format_args!("a frame claims {total} bytes")));
            }
            if total > self.max {
                return Err(unreadable(format_args!(
                    "a frame of {total} bytes is over the {} limit",
                    self.max
                )));
            }
            if self.buf.len() < total {
                self.buf.reserve(total - self.buf.len());
                return Ok(());
            }
            let frame = self.buf.split_to(total).freeze();
            let message = read_message_from(frame).map_err(unreadable)?;
            on_frame(&Frame::of(&message))?;
        }
        Ok(())
    }

    /// Whether bytes of an unfinished frame are buffered (a body ending here was cut short).
    pub fn pending(&self) -> bool {
        !self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue};

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The first frame of a real ConverseStream capture (reference wire-formats §3.5), byte
    /// for byte, followed by a tool-use start and a throttling exception.
    fn capture() -> Vec<u8> {
        let mut b = unhex("00000076 00000052 96d5fade");
        b.push(11);
        b.extend_from_slice(b":event-type");
        b.extend_from_slice(&[7, 0, 12]);
        b.extend_from_slice(b"messageStart");
        b.push(13);
        b.extend_from_slice(b":content-type");
        b.extend_from_slice(&[7, 0, 16]);
        b.extend_from_slice(b"application/json");
        b.push(13);
        b.extend_from_slice(b":message-type");
        b.extend_from_slice(&[7, 0, 5]);
        b.extend_from_slice(b"event");
        b.extend_from_slice(br#"{"role":"assistant"}"#);
        b.extend_from_slice(&unhex("6fa8c599"));
        assert_eq!(b.len(), 118);
        b.extend(unhex("000000c600000057f67806450b3a6576656e742d74797065070011636f6e74656e74426c6f636b53746172740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a312c227374617274223a7b22746f6f6c557365223a7b22746f6f6c5573654964223a22746f6f6c7573655f616263313233222c226e616d65223a226765745f77656174686572227d7d7dee5ad7f5"));
        b.extend(unhex("000000b2000000613590d5d30f3a657863657074696f6e2d747970650700137468726f74746c696e67457863657074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065070009657863657074696f6e7b226d657373616765223a22546f6f206d616e792072657175657374732c20706c656173652077616974206265666f726520747279696e6720616761696e2e227de8ffb26a"));
        b
    }

    type Owned = (String, String, Vec<u8>);

    fn decode(pieces: &[&[u8]]) -> Result<(Vec<Owned>, bool), ApiError> {
        let mut d = FrameDecoder::default();
        let mut out = Vec::new();
        for p in pieces {
            d.push(p, |f| {
                out.push((f.message_type.into(), f.kind.into(), f.payload.to_vec()));
                Ok(())
            })?;
        }
        Ok((out, d.pending()))
    }

    #[test]
    fn decodes_the_reference_frames() {
        let (frames, pending) = decode(&[&capture()]).unwrap();
        assert!(!pending);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].1, "messageStart");
        assert_eq!(frames[0].2, br#"{"role":"assistant"}"#);
        assert_eq!(frames[1].1, "contentBlockStart");
        assert!(String::from_utf8_lossy(&frames[1].2).contains("tooluse_abc123"));
        assert_eq!(
            (frames[2].0.as_str(), frames[2].1.as_str()),
            ("exception", "throttlingException")
        );
    }

    #[test]
    fn official_minimal_vectors() {
        let empty = unhex("00000010 00000000 05c248eb 7d98c8ff");
        let (frames, _) = decode(&[&empty]).unwrap();
        assert_eq!(frames[0], ("event".into(), "".into(), vec![]));
        let payload = unhex("0000001D 00000000 fd528c5a 7b27666f6f273a27626172277d c3653936");
        let (frames, _) = decode(&[&payload]).unwrap();
        assert_eq!(frames[0].2, b"{'foo':'bar'}");
    }

    #[test]
    fn the_same_frames_however_the_bytes_are_split() {
        let all = capture();
        let (whole, _) = decode(&[&all]).unwrap();
        for i in 0..=all.len() {
            let (a, b) = all.split_at(i);
            assert_eq!(decode(&[a, b]).unwrap().0, whole, "split at {i}");
        }
        let bytes: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(decode(&bytes).unwrap().0, whole);
        let (_, pending) = decode(&[&all[..all.len() - 3]]).unwrap();
        assert!(pending, "a cut frame is pending");
    }

    #[test]
    fn corrupt_or_oversized_frames_are_errors() {
        let mut bad = capture();
        bad[117] ^= 1; // the first frame's message CRC
        assert!(decode(&[&bad]).is_err());
        let mut bad = capture();
        bad[8] ^= 1; // its prelude CRC
        assert!(decode(&[&bad]).is_err());
        // A prelude claiming 1 GiB is refused before a byte of it is buffered.
        let mut d = FrameDecoder::new(1024);
        let e = d
            .push(&unhex("40000000 00000000 00000000"), |_| Ok(()))
            .unwrap_err();
        assert!(e.message.contains("limit"), "{}", e.message);
        assert!(decode(&[&unhex("00000004 00000000 00000000")]).is_err());
    }

    #[test]
    fn error_frames_carry_code_and_message() {
        let m = Message::new(&b""[..])
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("error".into()),
            ))
            .add_header(Header::new(
                ":error-code",
                HeaderValue::String("InternalFailure".into()),
            ))
            .add_header(Header::new(
                ":error-message",
                HeaderValue::String("boom".into()),
            ));
        let mut b = Vec::new();
        write_message_to(&m, &mut b).unwrap();
        let mut d = FrameDecoder::default();
        let mut seen = None;
        d.push(&b, |f| {
            seen = Some((f.kind.to_string(), f.error_message.map(str::to_string)));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, Some(("InternalFailure".into(), Some("boom".into()))));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data: Vec<u8>, cut in 0usize..64) {
            let cut = cut.min(data.len());
            let _ = decode(&[&data[..cut], &data[cut..]]);
        }
    }
}
