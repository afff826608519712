//! The chat completion the translators write for OpenAI clients (from Anthropic, Bedrock and
//! Gemini replies): one typed output, borrowing the upstream's text where it can.

use crate::formats::{FinishReason, ReplyContext, Usage};
use serde::Serialize;
use std::borrow::Cow;

/// What a translated reply says; [`Reply::to_json`] writes it as OpenAI's chat completion.
pub(crate) struct Reply<'a> {
    /// `chatcmpl-…`.
    pub id: String,
    /// Null when the reply has no text at all, as OpenAI sends it.
    pub text: Option<Cow<'a, str>>,
    pub reasoning: Option<Cow<'a, str>>,
    /// Tollgate-internal, for the pivot only ([`Reply::to_pivot_json`]): the signature of the
    /// reasoning and the encrypted (redacted) reasoning blocks, which an Anthropic client gets
    /// as `thinking.signature` and `redacted_thinking` and must send back.
    pub reasoning_signature: Option<Cow<'a, str>>,
    pub redacted_reasoning: Vec<Cow<'a, str>>,
    pub tool_calls: Vec<ToolCallOut<'a>>,
    pub finish: FinishReason,
    pub usage: Usage,
}

#[derive(Serialize)]
pub(crate) struct ToolCallOut<'a> {
    pub id: Cow<'a, str>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionOut<'a>,
}

#[derive(Serialize)]
pub(crate) struct FunctionOut<'a> {
    pub name: Cow<'a, str>,
    pub arguments: String,
}

impl<'a> ToolCallOut<'a> {
    pub fn new(id: Cow<'a, str>, name: Cow<'a, str>, arguments: String) -> ToolCallOut<'a> {
        ToolCallOut {
            id,
            kind: "function",
            function: FunctionOut { name, arguments },
        }
    }
}

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
pub(crate) struct UsageOut {
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

/// OpenAI's `finish_reason` (a stop sequence is a plain `stop` there).
pub(crate) fn finish_str(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Stop | FinishReason::StopSequence => "stop",
    }
}

/// Appends `s` to `acc`, borrowing when it is the only piece.
pub(crate) fn append<'a>(acc: &mut Option<Cow<'a, str>>, s: Cow<'a, str>) {
    match acc {
        None => *acc = Some(s),
        Some(a) => a.to_mut().push_str(&s),
    }
}

impl Reply<'_> {
    /// The chat completion, naming the model the client asked for.
    pub fn to_json(&self, ctx: &ReplyContext<'_>) -> serde_json::Result<Vec<u8>> {
        self.write(ctx, false)
    }

    /// The chat completion as the pivot to another client API: with the Tollgate-internal
    /// `reasoning_signature` and `redacted_reasoning` fields on the message.
    pub fn to_pivot_json(&self, ctx: &ReplyContext<'_>) -> serde_json::Result<Vec<u8>> {
        self.write(ctx, true)
    }

    fn write(&self, ctx: &ReplyContext<'_>, pivot: bool) -> serde_json::Result<Vec<u8>> {
        let out = Completion {
            id: &self.id,
            object: "chat.completion",
            created: ctx.created,
            model: ctx.client_model,
            choices: [ChoiceOut {
                index: 0,
                message: MessageOut {
                    role: "assistant",
                    content: self.text.as_deref(),
                    refusal: None,
                    tool_calls: &self.tool_calls,
                    reasoning_content: self.reasoning.as_deref().unwrap_or_default(),
                    reasoning_signature: self.reasoning_signature.as_deref().filter(|_| pivot),
                    redacted_reasoning: if pivot { &self.redacted_reasoning } else { &[] },
                },
                logprobs: None,
                finish_reason: finish_str(self.finish),
            }],
            usage: UsageOut::from(&self.usage),
        };
        serde_json::to_vec(&out)
    }
}
