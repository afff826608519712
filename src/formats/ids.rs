//! Ids in the client's vocabulary, derived from the upstream's so logs can be correlated. An
//! upstream without ids (Bedrock's Converse, Gemini without `responseId`) gets a fresh random
//! one per reply: clients key replies by id, so two replies must never share one. A Response
//! written for a translated route always gets a fresh id (`formats::responses`): the gateway
//! keeps it and finds it by that id, and upstream ids need not be unique.
//! Ids and the paths error messages name are joined by [`concat`] and [`element`], not
//! `format!`, whose machinery is costly on every request.

/// An OpenAI chat completion id: `chatcmpl-` and the upstream id without its own prefix.
pub fn chat(upstream: &str) -> String {
    match strip(upstream) {
        Some(id) => concat(&["chatcmpl-", id]),
        None => concat(&["chatcmpl-", &fresh()]),
    }
}

/// An Anthropic message id: `msg_` and the upstream id without its own prefix.
pub fn message(upstream: &str) -> String {
    match strip(upstream) {
        Some(id) => concat(&["msg_", id]),
        None => concat(&["msg_", &fresh()]),
    }
}

/// `parts` joined, in one allocation of the exact size: `format!`'s machinery costs ~450
/// instructions a call, and ids and error paths are built on every request.
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| out.push_str(p));
    out
}

/// The path of element `n` of `key` under `path` (`messages[3]`, `messages[3].content[0]`),
/// without `format!`.
pub fn element(path: &str, key: &str, n: usize) -> String {
    let dot = if path.is_empty() { "" } else { "." };
    concat(&[path, dot, key, "[", itoa::Buffer::new().format(n), "]"])
}

/// 32 random hex digits, for a reply whose upstream gave it no id (and every request's id):
/// written digit by digit, as `format!` costs a few thousand instructions here.
pub fn fresh() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = fastrand::u128(..);
    let mut out = [0u8; 32];
    for (i, c) in out.iter_mut().enumerate() {
        *c = HEX[(n >> (124 - 4 * i) & 0xf) as usize];
    }
    // ASCII only: checked in one pass and copied once (no lossy scan).
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// The id without a known prefix; `None` when nothing is left.
fn strip(id: &str) -> Option<&str> {
    let id = id
        .strip_prefix("chatcmpl-")
        .or_else(|| id.strip_prefix("msg_"))
        .unwrap_or(id);
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fresh_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (super::fresh(), super::fresh());
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn concat_and_element_write_what_format_does() {
        assert_eq!(super::concat(&["a", "", "bc"]), format!("a{}bc", ""));
        assert_eq!(super::concat(&[]), "");
        assert_eq!(
            super::element("messages[1]", "content", 20),
            "messages[1].content[20]"
        );
        for n in [0, 7, 10, 12_345, usize::MAX] {
            assert_eq!(super::element("", "messages", n), format!("messages[{n}]"));
        }
    }

    #[test]
    fn upstream_ids_are_kept_and_missing_ones_are_fresh() {
        assert_eq!(super::chat("msg_01abc"), "chatcmpl-01abc");
        assert_eq!(super::message("chatcmpl-xyz"), "msg_xyz");
        for mint in [super::chat, super::message] {
            let (a, b) = (mint(""), mint(""));
            assert_ne!(a, b);
            assert!(!a.contains("tollgate"), "{a}");
            let hex = a.rsplit(['-', '_']).next().unwrap();
            assert_eq!(hex.len(), 32, "{a}");
            assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        }
    }
}
