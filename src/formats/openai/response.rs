//! The chat completion the translators write for OpenAI clients (from Anthropic, Bedrock and
//! Gemini replies): one typed output, borrowing the upstream's text where it can.

use crate::formats::write as w;
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

    /// Written by hand (serde's derive escaped every key at run time: two thirds of the cost),
    /// as the derive wrote it: the same fields in the same order (`write_tests.rs` compares).
    fn write(&self, ctx: &ReplyContext<'_>, pivot: bool) -> serde_json::Result<Vec<u8>> {
        let text = self.text.as_deref().map_or(0, str::len);
        let mut o =
            String::with_capacity(480 + text + self.reasoning.as_deref().map_or(0, str::len));
        o.push_str("{\"id\":");
        w::string(&mut o, &self.id);
        o.push_str(",\"object\":\"chat.completion\",\"created\":");
        w::uint(&mut o, ctx.created);
        o.push_str(",\"model\":");
        w::string(&mut o, ctx.client_model);
        o.push_str(",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        w::opt_string(&mut o, self.text.as_deref());
        o.push_str(",\"refusal\":null");
        if !self.tool_calls.is_empty() {
            o.push_str(",\"tool_calls\":");
            o.push_str(&serde_json::to_string(&self.tool_calls)?);
        }
        if let Some(r) = self.reasoning.as_deref().filter(|r| !r.is_empty()) {
            o.push_str(",\"reasoning_content\":");
            w::string(&mut o, r);
        }
        if let Some(sig) = self.reasoning_signature.as_deref().filter(|_| pivot) {
            o.push_str(",\"reasoning_signature\":");
            w::string(&mut o, sig);
        }
        if pivot && !self.redacted_reasoning.is_empty() {
            o.push_str(",\"redacted_reasoning\":[");
            for (i, r) in self.redacted_reasoning.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                w::string(&mut o, r);
            }
            o.push(']');
        }
        o.push_str("},\"logprobs\":null,\"finish_reason\":\"");
        o.push_str(finish_str(self.finish));
        o.push_str("\"}],\"usage\":");
        write_usage(&mut o, &self.usage);
        o.push('}');
        Ok(o.into_bytes())
    }
}

/// OpenAI's `usage` object for normalised usage.
pub(crate) fn write_usage(o: &mut String, u: &Usage) {
    o.push_str("{\"prompt_tokens\":");
    w::uint(o, u.input);
    o.push_str(",\"completion_tokens\":");
    w::uint(o, u.output);
    o.push_str(",\"total_tokens\":");
    w::uint(o, u.total());
    o.push_str(",\"prompt_tokens_details\":{\"cached_tokens\":");
    w::uint(o, u.cached_input);
    o.push_str(",\"cache_write_tokens\":");
    w::uint(o, u.cache_creation);
    o.push_str("},\"completion_tokens_details\":{\"reasoning_tokens\":");
    w::uint(o, u.reasoning);
    o.push_str("}}");
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod write_tests;
