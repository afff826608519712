//! The Response object the gateway writes for a translated reply, complete or streamed: output
//! items (message, function call, reasoning), status and usage. Texts are kept as the inside of
//! JSON string literals, so upstream text is copied, never unescaped and escaped again.

use super::namespaces::ToolNames;
use crate::error::ApiError;
use crate::formats::{FinishReason, JsonStr, Usage};
use bytes::BytesMut;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Message,
    /// A message whose only part is a refusal.
    Refusal,
    FunctionCall,
    Reasoning,
}

/// One output item. `text` is the text, the arguments or the reasoning summary, as the inside
/// of a JSON string literal (escapes kept).
pub(crate) struct Item {
    pub kind: Kind,
    /// `msg_…`, `fc_…` or `rs_…`: plain ASCII, needs no escaping.
    pub id: String,
    pub text: String,
    /// Function calls: `call_id` and `name` as JSON literals, quotes included, and the
    /// namespace of a flattened namespaced tool (a literal too; empty when none).
    pub call_id: String,
    pub name: String,
    pub namespace: String,
    /// Streams: its done events were sent.
    pub closed: bool,
}

impl Item {
    pub fn new(kind: Kind, id: String) -> Item {
        Item {
            kind,
            id,
            text: String::new(),
            call_id: String::new(),
            name: String::new(),
            namespace: String::new(),
            closed: false,
        }
    }

    /// A function call's name; a flattened namespaced tool's gets its namespace and own name back.
    pub fn set_name(&mut self, name: &JsonStr<'_>, names: Option<&ToolNames>) {
        let original = names.and_then(|n| n.original(&name.decode()));
        match original {
            Some((ns, own)) => {
                self.name = JsonStr::encode(own).literal().to_string();
                self.namespace = JsonStr::encode(ns).literal().to_string();
            }
            None => self.name = name.literal().to_string(),
        }
    }

    /// Appends a JSON string literal's content (quotes stripped).
    pub fn push_literal(&mut self, literal: &str) {
        self.text.push_str(inner(literal));
    }

    /// The item as JSON; `done` says whether it is complete (else `in_progress`, empty).
    pub fn write(&self, done: bool, out: &mut BytesMut) {
        let status = if done { "completed" } else { "in_progress" };
        let text = if done { self.text.as_str() } else { "" };
        let id = self.id.as_str();
        match self.kind {
            Kind::Message | Kind::Refusal => {
                cat(out, &[r#"{"id":""#, id, r#"","type":"message","status":""#]);
                cat(out, &[status, r#"","role":"assistant","content":["#]);
            }
            Kind::FunctionCall => {
                let (call, name) = (self.call_id.as_str(), self.name.as_str());
                cat(
                    out,
                    &[r#"{"id":""#, id, r#"","type":"function_call","status":""#],
                );
                cat(
                    out,
                    &[status, r#"","call_id":"#, call, r#","name":"#, name, ","],
                );
                if !self.namespace.is_empty() {
                    cat(out, &[r#""namespace":"#, &self.namespace, ","]);
                }
                cat(out, &[r#""arguments":""#, text, r#""}"#]);
            }
            Kind::Reasoning => {
                cat(
                    out,
                    &[r#"{"id":""#, id, r#"","type":"reasoning","status":""#],
                );
                cat(out, &[status, r#"","summary":["#]);
            }
        }
        let has_part = match self.kind {
            Kind::Message | Kind::Refusal => done,
            Kind::Reasoning => done && !self.text.is_empty(),
            Kind::FunctionCall => false,
        };
        if has_part {
            self.write_part(out);
        }
        match self.kind {
            Kind::Message | Kind::Refusal | Kind::Reasoning => out.extend_from_slice(b"]}"),
            Kind::FunctionCall => {}
        }
    }

    /// The item's content part (message) or summary part (reasoning), complete.
    pub fn write_part(&self, out: &mut BytesMut) {
        self.write_part_text(&self.text, out);
    }

    /// The part with `text` (empty in `content_part.added`).
    pub fn write_part_text(&self, text: &str, out: &mut BytesMut) {
        match self.kind {
            Kind::Refusal => cat(out, &[r#"{"type":"refusal","refusal":""#, text, r#""}"#]),
            Kind::Reasoning => cat(out, &[r#"{"type":"summary_text","text":""#, text, r#""}"#]),
            _ => cat(
                out,
                &[
                    r#"{"type":"output_text","text":""#,
                    text,
                    r#"","annotations":[],"logprobs":[]}"#,
                ],
            ),
        }
    }
}

/// Writes `parts` one after another (`write!` went through the formatter for each piece).
fn cat(out: &mut BytesMut, parts: &[&str]) {
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

/// An unsigned integer as serde_json writes it.
fn num(out: &mut BytesMut, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A JSON string literal without its quotes.
fn inner(literal: &str) -> &str {
    literal
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or("")
}

/// Where a Response stands.
pub(crate) enum Status<'a> {
    InProgress,
    Done(Option<FinishReason>),
    Failed(&'a ApiError),
}

/// What every Response object of one reply shares.
pub(crate) struct Head {
    /// `resp_…`, plain ASCII.
    pub id: String,
    /// The model the client asked for, as a JSON literal.
    pub model: String,
    pub created: u64,
}

impl Head {
    /// The Response object; `items` are written complete unless it is in progress (then `[]`).
    pub fn write(
        &self,
        status: &Status<'_>,
        items: &[Item],
        usage: Option<&Usage>,
        out: &mut BytesMut,
    ) {
        let (name, incomplete) = match status {
            Status::InProgress => ("in_progress", None),
            Status::Done(Some(FinishReason::Length)) => ("incomplete", Some("max_output_tokens")),
            Status::Done(Some(FinishReason::ContentFilter)) => {
                ("incomplete", Some("content_filter"))
            }
            Status::Done(_) => ("completed", None),
            Status::Failed(_) => ("failed", None),
        };
        cat(
            out,
            &[
                r#"{"id":""#,
                &self.id,
                r#"","object":"response","created_at":"#,
            ],
        );
        num(out, self.created);
        cat(out, &[r#","status":""#, name, r#"","model":"#, &self.model]);
        cat(out, &[r#","output":["#]);
        if !matches!(status, Status::InProgress) {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b",");
                }
                item.write(true, out);
            }
        }
        out.extend_from_slice(b"],\"error\":");
        match status {
            Status::Failed(e) => write_error(e, out),
            _ => out.extend_from_slice(b"null"),
        }
        match incomplete {
            Some(r) => cat(out, &[r#","incomplete_details":{"reason":""#, r, r#""}"#]),
            None => out.extend_from_slice(b",\"incomplete_details\":null"),
        }
        // Request settings are not echoed (the spec's Response has no `store`); `usage` is
        // optional but not nullable, so it is left out until known.
        out.extend_from_slice(b",\"instructions\":null,\"metadata\":{},\"parallel_tool_calls\":true,\"temperature\":null,\"top_p\":null,\"tool_choice\":\"auto\",\"tools\":[]");
        if let Some(u) = usage {
            out.extend_from_slice(b",\"usage\":");
            write_usage(u, out);
        }
        out.extend_from_slice(b"}");
    }
}

/// A failed Response's `error`: `{code, message}`, the code from the spec's enum.
pub(crate) fn write_error(e: &ApiError, out: &mut BytesMut) {
    let _ = write!(
        out,
        "{{\"code\":\"{}\",\"message\":{}}}",
        super::error::code(e),
        crate::formats::JsonStr::encode(&e.message).literal()
    );
}

/// Responses `usage`: input includes cached tokens, output includes reasoning tokens.
pub(crate) fn write_usage(u: &Usage, out: &mut BytesMut) {
    let fields = [
        (r#"{"input_tokens":"#, u.input),
        (
            r#","input_tokens_details":{"cached_tokens":"#,
            u.cached_input,
        ),
        (r#","cache_write_tokens":"#, u.cache_creation),
        (r#"},"output_tokens":"#, u.output),
        (
            r#","output_tokens_details":{"reasoning_tokens":"#,
            u.reasoning,
        ),
        (r#"},"total_tokens":"#, u.total()),
    ];
    for (key, v) in fields {
        cat(out, &[key]);
        num(out, v);
    }
    out.extend_from_slice(b"}");
}
