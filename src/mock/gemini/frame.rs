//! Google's two layouts (pretty-printed bodies; SSE data with `"key": value` spacing) and the
//! stream sender: SSE framed with CRLF, or a streamed JSON array.

use super::super::{send_events, Behaviour, Obj};
use pingora::protocols::http::ServerSession;
use serde::Serialize;

/// Compact JSON with a space after each colon and none after commas, as Google's SSE data.
pub(super) fn google_line(v: &impl Serialize) -> Vec<u8> {
    let compact = serde_json::to_vec(v).unwrap_or_default();
    let mut out = Vec::with_capacity(compact.len() + compact.len() / 8);
    let (mut in_str, mut escaped) = (false, false);
    for b in compact {
        out.push(b);
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
        } else if b == b'"' {
            in_str = true;
        } else if b == b':' {
            out.push(b' ');
        }
    }
    out
}

/// Pretty-printed JSON (two-space indent, `"key": value`), as Google's REST front ends write
/// complete bodies. Re-indents the compact text, because `Obj` values are already serialised.
pub(super) fn pretty(v: &impl Serialize) -> Vec<u8> {
    let compact = serde_json::to_vec(v).unwrap_or_default();
    let mut out = Vec::with_capacity(compact.len() * 2);
    let (mut in_str, mut escaped, mut depth) = (false, false, 0usize);
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.resize(out.len() + 2 * depth, b' ');
    };
    let mut i = 0;
    while i < compact.len() {
        let b = compact[i];
        i += 1;
        if in_str {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_str = true;
                out.push(b);
            }
            b'{' | b'[' if matches!(compact.get(i), Some(b'}' | b']')) => {
                out.extend_from_slice(&[b, compact[i]]);
                i += 1;
            }
            b'{' | b'[' => {
                out.push(b);
                depth += 1;
                newline(&mut out, depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(b),
        }
    }
    out
}

/// Sends the chunks: SSE events framed with CRLF (`alt=sse`), or a streamed JSON array of
/// pretty-printed responses. Neither has an end marker; the body just ends.
pub(super) async fn stream(
    s: &mut ServerSession,
    chunks: &[Obj],
    sse: bool,
    b: &Behaviour,
    common: &[(&str, String)],
) -> bool {
    let err = super::error_body(503, "The model is overloaded. Please try again later.");
    if sse {
        let frame = |line: Vec<u8>| [b"data: ".as_slice(), &line, b"\r\n\r\n"].concat();
        let events: Vec<Vec<u8>> = chunks.iter().map(|c| frame(google_line(c))).collect();
        let ct = [("content-type", "text/event-stream")];
        return send_events(s, events, b, &frame(google_line(&err)), common, &ct).await;
    }
    let mut events: Vec<Vec<u8>> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            [
                if i == 0 { b"[".as_slice() } else { b"\n,\r\n" },
                &pretty(c),
            ]
            .concat()
        })
        .collect();
    events.push(if chunks.is_empty() {
        b"[]".to_vec()
    } else {
        b"\n]".to_vec()
    });
    let err = [b"\n,\r\n".as_slice(), &pretty(&err), b"\n]"].concat();
    let ct = [("content-type", "application/json; charset=UTF-8")];
    send_events(s, events, b, &err, common, &ct).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn googles_two_layouts() {
        let v = obj! {"a": obj! {"b": [1, 2], "c": super::super::super::EMPTY}, "d": "x:,{\\\"y"};
        assert_eq!(
            String::from_utf8(google_line(&v)).unwrap(),
            r#"{"a": {"b": [1,2],"c": []},"d": "x:,{\\\"y"}"#
        );
        let p = String::from_utf8(pretty(&v)).unwrap();
        let want: Value = serde_json::from_str(&p).unwrap();
        assert_eq!(p, serde_json::to_string_pretty(&want).unwrap());
        assert!(p.starts_with("{\n  \"a\": {\n    \"b\": [\n      1,"));
    }
}
