//! The hand-written chat completion is byte for byte what serde's derive wrote.

use super::*;
use serde::Serialize;

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceOut<'a>; 1],
    usage: UsageOut,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tool_calls: &'a [ToolCallOut<'a>],
    #[serde(skip_serializing_if = "str::is_empty")]
    reasoning_content: &'a str,
    /// Pivot only, never written for a client (see `Reply::reasoning_signature`).
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_signature: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    redacted_reasoning: &'a [Cow<'a, str>],
}

/// OpenAI's `usage` for normalised usage.
#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetailsOut,
    completion_tokens_details: CompletionDetailsOut,
}

#[derive(Serialize)]
struct PromptDetailsOut {
    cached_tokens: u64,
    cache_write_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetailsOut {
    reasoning_tokens: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        UsageOut {
            prompt_tokens: u.input,
            completion_tokens: u.output,
            total_tokens: u.total(),
            prompt_tokens_details: PromptDetailsOut {
                cached_tokens: u.cached_input,
                cache_write_tokens: u.cache_creation,
            },
            completion_tokens_details: CompletionDetailsOut {
                reasoning_tokens: u.reasoning,
            },
        }
    }
}

/// The writer before it was written by hand, kept as the oracle.
fn derived(r: &Reply<'_>, ctx: &ReplyContext<'_>, pivot: bool) -> serde_json::Result<Vec<u8>> {
    let out = Completion {
        id: &r.id,
        object: "chat.completion",
        created: ctx.created,
        model: ctx.client_model,
        choices: [ChoiceOut {
            index: 0,
            message: MessageOut {
                role: "assistant",
                content: r.text.as_deref(),
                refusal: None,
                tool_calls: &r.tool_calls,
                reasoning_content: r.reasoning.as_deref().unwrap_or_default(),
                reasoning_signature: r.reasoning_signature.as_deref().filter(|_| pivot),
                redacted_reasoning: if pivot { &r.redacted_reasoning } else { &[] },
            },
            logprobs: None,
            finish_reason: finish_str(r.finish),
        }],
        usage: UsageOut::from(&r.usage),
    };
    serde_json::to_vec(&out)
}

fn reply<'a>(text: Option<&'a str>, reasoning: Option<&'a str>, tools: usize) -> Reply<'a> {
    Reply {
        id: "chatcmpl-\"x\"".into(),
        text: text.map(Cow::Borrowed),
        reasoning: reasoning.map(Cow::Borrowed),
        reasoning_signature: Some("sig\\1".into()),
        redacted_reasoning: vec!["r1".into(), "r\n2".into()],
        tool_calls: (0..tools)
            .map(|i| {
                ToolCallOut::new(
                    format!("call_{i}").into(),
                    "get\tweather".into(),
                    "{\"a\":1}".into(),
                )
            })
            .collect(),
        finish: FinishReason::ToolCalls,
        usage: Usage {
            input: 12,
            output: u64::MAX / 4,
            cached_input: 3,
            cache_creation: 4,
            reasoning: 5,
        },
    }
}

#[test]
fn the_reply_is_written_as_the_derive_wrote_it() {
    let ctx = ReplyContext {
        client_model: "gpt-\u{1F980}\"4o\"",
        created: 1_700_000_000,
        tool_names: None,
    };
    let every: String = (0u8..0x80).map(char::from).collect();
    for text in [
        None,
        Some(""),
        Some("hello \"world\"\n"),
        Some(every.as_str()),
    ] {
        for reasoning in [None, Some(""), Some("think\u{0}ing")] {
            for tools in [0, 1, 2] {
                let r = reply(text, reasoning, tools);
                for pivot in [false, true] {
                    let (got, want) = (
                        r.write(&ctx, pivot).unwrap(),
                        derived(&r, &ctx, pivot).unwrap(),
                    );
                    assert_eq!(
                        String::from_utf8(got).unwrap(),
                        String::from_utf8(want).unwrap()
                    );
                }
            }
        }
    }
}
