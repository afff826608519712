//! What Gemini's complete replies and streams share: `usageMetadata`, finish reasons, and the
//! tool-call ids Tollgate mints for `functionCall` parts.
//!
//! Gemini's function calls carry no id, so the id is minted (`call_` and a hash of the reply
//! id, the call's index, name and arguments: stable for the same reply). Thinking models attach
//! a `thoughtSignature` to function-call parts, and Gemini 3 rejects a history whose calls lack
//! it; OpenAI clients echo tool-call ids back verbatim, so the signature rides in the id as
//! `call_<hash>__thought__<signature>` (base64url without padding, so the id stays within
//! `[A-Za-z0-9_-]`, which Anthropic also demands of ids should the conversation move there) and
//! is put back on the `functionCall` part when the id returns. Signatures on text parts have
//! nowhere to ride in chat completions and are dropped (Google only enforces them on calls).

use crate::formats::{FinishReason, Usage};
use serde::Deserialize;
use std::borrow::Cow;

/// `usageMetadata`. `promptTokenCount` already includes cached tokens; `candidatesTokenCount`
/// excludes thoughts.
#[derive(Deserialize, Default, Clone, Copy, Debug)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: u64,
    #[serde(default)]
    pub candidates_token_count: u64,
    #[serde(default)]
    pub cached_content_token_count: u64,
    #[serde(default)]
    pub thoughts_token_count: u64,
    #[serde(default)]
    pub tool_use_prompt_token_count: u64,
}

impl UsageMetadata {
    /// In OpenAI's meaning: tool-use prompt tokens are input, thoughts are output.
    pub fn normalise(&self) -> Usage {
        Usage {
            input: self
                .prompt_token_count
                .saturating_add(self.tool_use_prompt_token_count),
            cached_input: self.cached_content_token_count,
            cache_creation: 0,
            output: self
                .candidates_token_count
                .saturating_add(self.thoughts_token_count),
            reasoning: self.thoughts_token_count,
        }
    }
}

/// A candidate's `finishReason` in the pivot's terms. Gemini ends function calls with `STOP`;
/// the callers turn that into `ToolCalls` when the reply holds a call. `LANGUAGE`, `OTHER`,
/// `MALFORMED_FUNCTION_CALL`, `UNEXPECTED_TOOL_CALL`, `TOO_MANY_TOOL_CALLS`, `IMAGE_OTHER` and
/// `NO_IMAGE` have no OpenAI value and end as `stop` (what strict OpenAI clients accept; the
/// reply then simply has no usable call).
pub fn finish_reason(s: &str) -> FinishReason {
    match s {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// The reason a reply ends with: a plain stop with function calls is a tool-call stop.
pub fn final_reason(r: FinishReason, has_calls: bool) -> FinishReason {
    match r {
        FinishReason::Stop if has_calls => FinishReason::ToolCalls,
        r => r,
    }
}

const THOUGHT: &str = "__thought__";

/// FNV-1a over the pieces (with a separator), for stable minted ids.
fn fnv(pieces: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in pieces {
        for &b in p.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The id of the `index`th function call of reply `response_id`, carrying its signature.
pub fn tool_call_id(
    response_id: &str,
    index: u32,
    name: &str,
    args: &str,
    signature: Option<&str>,
) -> String {
    let h = fnv(&[
        response_id.as_bytes(),
        &index.to_le_bytes(),
        name.as_bytes(),
        args.as_bytes(),
    ]);
    let mut id = format!("call_{h:016x}");
    if let Some(sig) = signature.filter(|s| !s.is_empty()) {
        id.push_str(THOUGHT);
        id.extend(sig.chars().filter(|&c| c != '=').map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        }));
    }
    id
}

/// The thought signature a minted id carries, in standard padded base64 (what Google's JSON
/// for `bytes` fields uses); `None` for any other id.
pub fn signature_of(id: &str) -> Option<String> {
    let (_, sig) = id.split_once(THOUGHT)?;
    let ok = !sig.is_empty()
        && sig.len() % 4 != 1
        && sig
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return None;
    }
    let mut out: String = sig
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    Some(out)
}

/// JSON text without insignificant whitespace (Gemini's complete replies are pretty-printed),
/// borrowed when there is none.
pub fn compact(json: &str) -> Cow<'_, str> {
    let mut in_str = false;
    let mut escaped = false;
    let needs = json.bytes().any(|b| {
        let ws = !in_str && matches!(b, b' ' | b'\n' | b'\r' | b'\t');
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if b == b'"' {
            in_str = true;
        }
        ws
    });
    if !needs {
        return Cow::Borrowed(json);
    }
    let (mut in_str, mut escaped) = (false, false);
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if matches!(c, ' ' | '\n' | '\r' | '\t') {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_in_openai_terms() {
        let u: UsageMetadata = serde_json::from_str(
            r#"{"promptTokenCount":100,"candidatesTokenCount":7,"totalTokenCount":135,
            "cachedContentTokenCount":60,"thoughtsTokenCount":20,"toolUsePromptTokenCount":8}"#,
        )
        .unwrap();
        let n = u.normalise();
        assert_eq!(
            (n.input, n.cached_input, n.output, n.reasoning),
            (108, 60, 27, 20)
        );
        assert_eq!(n.total(), 135);
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason("MAX_TOKENS"), FinishReason::Length);
        assert_eq!(finish_reason("SPII"), FinishReason::ContentFilter);
        assert_eq!(finish_reason("MALFORMED_FUNCTION_CALL"), FinishReason::Stop);
        assert_eq!(
            final_reason(FinishReason::Stop, true),
            FinishReason::ToolCalls
        );
        assert_eq!(
            final_reason(FinishReason::Length, true),
            FinishReason::Length
        );
    }

    #[test]
    fn signatures_ride_in_ids() {
        let sig = "CiQBEU0yD7pXvs4+/3ZLLv0dNW12KR==";
        let id = tool_call_id("r1", 0, "f", "{}", Some(sig));
        assert!(id.starts_with("call_"));
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        assert_eq!(signature_of(&id).as_deref(), Some(sig));
        let plain = tool_call_id("r1", 0, "f", "{}", None);
        assert_eq!(plain.len(), "call_".len() + 16);
        assert_eq!(signature_of(&plain), None);
        assert_ne!(plain, tool_call_id("r1", 1, "f", "{}", None));
        assert_eq!(signature_of("call_x__thought__a"), None);
        assert_eq!(signature_of("call_x__thought__a+b"), None);
        assert_eq!(signature_of("call_x__thought__abcde").as_deref(), None);
        assert_eq!(
            signature_of("call_x__thought__abc").as_deref(),
            Some("abc=")
        );
    }

    #[test]
    fn compacts_outside_strings_only() {
        assert!(matches!(compact(r#"{"a":1}"#), Cow::Borrowed(_)));
        assert_eq!(
            compact("{\n  \"a b\": \"x \\\" y\",\n  \"c\": [1, 2]\n}"),
            r#"{"a b":"x \" y","c":[1,2]}"#
        );
    }
}
