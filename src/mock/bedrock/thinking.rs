//! What Claude on Bedrock checks of the thinking in a history: each `reasoningContent` block is
//! an assistant's, with the signature the mock gave its text (`signature`), or redacted; and
//! while thinking is enabled, a tool-use loop (one assistant turn, from the last user message
//! that is not only tool results) starts with a reasoning block. The refusals are Bedrock's
//! `ValidationException` texts.

use serde_json::Value;

/// The signature of a reasoning text: derived from it, so that thinking changed on its way
/// back (or another text's signature) is refused, as Claude refuses it.
pub(super) fn signature(text: &str) -> String {
    format!("mocksig{:016x}", super::super::reply::seed(text.as_bytes()))
}

pub(super) fn check(body: &Value) -> Result<(), String> {
    let msgs = body["messages"].as_array().map_or(&[][..], Vec::as_slice);
    for (i, m) in msgs.iter().enumerate() {
        for (j, b) in blocks(m).enumerate() {
            if let Some(r) = b.get("reasoningContent") {
                reasoning(r, m["role"] == "assistant")
                    .map_err(|e| format!("{PREFIX}messages.{i}.content.{j}: {e}"))?;
            }
        }
    }
    let on = matches!(
        body["additionalModelRequestFields"]["thinking"]["type"].as_str(),
        Some("enabled" | "adaptive")
    );
    match tool_turn_without_thinking(msgs) {
        Some(i) if on => Err(format!("{PREFIX}messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking", first_kind(&msgs[i]))),
        _ => Ok(()),
    }
}

const PREFIX: &str = "The model returned the following errors: ";

fn blocks(m: &Value) -> impl Iterator<Item = &Value> {
    m["content"].as_array().into_iter().flatten()
}

fn reasoning(r: &Value, assistant: bool) -> Result<(), &'static str> {
    if !assistant {
        return Err("`thinking` blocks are only allowed in `assistant` messages");
    }
    if let Some(d) = r.get("redactedContent") {
        return match d.as_str() {
            Some(s) if !s.is_empty() => Ok(()),
            _ => Err("Invalid `data` in `redacted_thinking` block"),
        };
    }
    let t = &r["reasoningText"];
    match (t["text"].as_str(), t["signature"].as_str()) {
        (Some(text), Some(sig)) if sig == signature(text) => Ok(()),
        (Some(_), Some(_)) => Err("Invalid `signature` in `thinking` block"),
        (Some(_), None) => Err("`signature`: Field required"),
        _ => Err("`thinking`: Field required"),
    }
}

/// The first assistant message of the turn in progress when that turn used a tool and does
/// not start with reasoning.
fn tool_turn_without_thinking(msgs: &[Value]) -> Option<usize> {
    let has = |m: &Value, k: &str| blocks(m).any(|b| b.get(k).is_some());
    let start = msgs
        .iter()
        .rposition(|m| m["role"] == "user" && !has(m, "toolResult"))
        .map_or(0, |i| i + 1);
    let mut turn = (start..msgs.len()).filter(|&i| msgs[i]["role"] == "assistant");
    let first = turn.next()?;
    let thinks = msgs[first]["content"][0].get("reasoningContent").is_some();
    let tools = has(&msgs[first], "toolUse") || turn.any(|i| has(&msgs[i], "toolUse"));
    (!thinks && tools).then_some(first)
}

/// Claude's name for a Converse block, for the refusal.
fn first_kind(m: &Value) -> &'static str {
    match blocks(m).next() {
        Some(b) if b.get("toolUse").is_some() => "tool_use",
        _ => "text",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(lead: Vec<Value>, thinking: bool) -> Value {
        let mut content = lead;
        content.push(json!({"toolUse": {"toolUseId": "t", "name": "w", "input": {}}}));
        let mut b = json!({"messages": [
            {"role": "user", "content": [{"text": "go"}]},
            {"role": "assistant", "content": content},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "ok"}]}}]}]});
        if thinking {
            b["additionalModelRequestFields"] =
                json!({"thinking": {"type": "enabled", "budget_tokens": 1024}});
        }
        b
    }

    fn signed(text: &str, sig: &str) -> Value {
        json!({"reasoningContent": {"reasoningText": {"text": text, "signature": sig}}})
    }

    #[test]
    fn a_thinking_tool_loop_needs_its_signed_reasoning() {
        let e = check(&body(vec![], true)).unwrap_err();
        assert!(
            e.contains("messages.1.content.0.type: Expected `thinking`"),
            "{e}"
        );
        assert!(check(&body(vec![], false)).is_ok());
        assert!(check(&body(vec![signed("hm", &signature("hm"))], true)).is_ok());
        let redacted = json!({"reasoningContent": {"redactedContent": "cmVk"}});
        assert!(check(&body(vec![redacted], true)).is_ok());
        let e = check(&body(vec![signed("hm!", &signature("hm"))], true)).unwrap_err();
        assert!(
            e.contains("messages.1.content.0: Invalid `signature`"),
            "{e}"
        );
        // A finished turn (the user spoke since) needs none.
        let mut b = body(vec![], true);
        b["messages"].as_array_mut().unwrap().extend([
            json!({"role": "assistant", "content": [{"text": "done"}]}),
            json!({"role": "user", "content": [{"text": "again"}]}),
        ]);
        assert!(check(&b).is_ok());
    }
}
