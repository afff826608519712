//! Planning one attempt: the provider addresses the request, and the body passes through
//! (same API) or is translated (another API). A request the provider cannot express is a 400
//! before anything is sent.

use super::reply::{EmbedReply, Reply};
use crate::error::ApiError;
use crate::formats::{self, Format};
use crate::fronts::Front;
use crate::providers::{Backend, Operation, Provider};
use bytes::Bytes;
use pingora::http::RequestHeader;
use std::ops::Range;
use std::sync::Arc;

/// What the exchange needs from admission.
pub(crate) struct Request {
    pub front: Front,
    pub body: Bytes,
    /// Where `model` sits in `body`, for the override splice.
    pub model_span: Range<usize>,
    pub client_model: Arc<str>,
    pub stream: bool,
    /// OpenAI clients: `stream_options` is in the body, and whether it asks for usage.
    pub has_stream_options: bool,
    pub include_usage: bool,
    /// Output tokens the request may produce (its cap, or the route's default).
    pub max_tokens: u64,
    /// What a translation does with fields it does not carry (the key's and route's rules).
    pub fields: formats::fields::FieldPolicy,
    /// Responses requests with translated targets: the expanded body and what to keep.
    pub state: Option<super::kept::Readied>,
}

/// One target's upstream request.
pub(super) struct Plan {
    pub path: String,
    pub body: Bytes,
    pub translated: bool,
    pub reply: Reply,
    /// The client's fields the translation dropped, by name.
    pub dropped: Vec<String>,
}

pub(super) enum Planned {
    Send(Plan),
    /// Answered by the gateway itself (a token estimate for a backend that cannot count).
    Local(Bytes),
}

/// Addresses the request for `backend` and passes the body through or translates it. A request
/// the provider cannot express is a 400 here, before anything is sent.
pub(super) fn plan(
    req: &Request,
    client_hdr: &RequestHeader,
    backend: &Backend,
    target_model: Option<&str>,
) -> Result<Planned, ApiError> {
    let p = &*backend.provider;
    let Some(op) = operation(req.front, backend) else {
        return unserved(req, backend, client_hdr.uri.path());
    };
    let at = Addressed {
        req,
        hdr: client_hdr,
        p,
        base: backend.base_path(),
        op,
        model: target_model.unwrap_or(&req.client_model),
        client: Front::api(Some(req.front), client_hdr),
    };
    if req.front == Front::Embeddings && p.format() != Format::OpenAi {
        return at.embeddings();
    }
    // The client's own API: Responses is OpenAI's second one, served by the OpenAI-format
    // providers that support it (`op` above); the others get it translated.
    let responses = matches!(op, Operation::Responses | Operation::ResponsesInputTokens);
    if p.format() == at.client || responses {
        return at.passthrough(target_model);
    }
    at.translated()
}

/// A request addressed to one target: what each way of planning it reads.
struct Addressed<'a> {
    req: &'a Request,
    hdr: &'a RequestHeader,
    p: &'a dyn Provider,
    base: &'a str,
    op: Operation,
    /// The model asked of the provider.
    model: &'a str,
    /// The client's API.
    client: Format,
}

impl Addressed<'_> {
    fn reply(&self, upstream: Format, include_usage: bool) -> Reply {
        Reply {
            client: self.client,
            upstream,
            include_usage,
            client_model: self.req.client_model.clone(),
            embed: None,
            strip_usage: false,
            tool_names: None,
            keep: None,
        }
    }

    /// OpenAI's embeddings request, for a provider with another embeddings API.
    fn embeddings(&self) -> Result<Planned, ApiError> {
        let (req, p, model) = (self.req, self.p, self.model);
        let e = formats::openai::embeddings::parse(&req.body, req.fields)?;
        let body = p.embed_request(&e, model)?;
        let mut r = self.reply(p.format(), false);
        r.embed = Some(EmbedReply {
            base64: e.base64,
            estimate: formats::pivot::text_tokens(e.chars()),
            model: model.to_string(),
        });
        Ok(Planned::Send(Plan {
            path: p.path(self.base, self.op, model, None, false),
            body: Bytes::from(body),
            translated: true,
            reply: r,
            dropped: e.dropped,
        }))
    }

    /// The client's own API: the body as sent, but for the target's model and the usage that
    /// billing needs.
    fn passthrough(&self, target_model: Option<&str>) -> Result<Planned, ApiError> {
        let (req, p) = (self.req, self.p);
        let mut body = match target_model {
            // A stored-response request has no body to carry the model.
            Some(m) if req.front != Front::StoredResponse => {
                super::admission::with_model(&req.body, &req.model_span, m)
            }
            _ => req.body.clone(),
        };
        let mut stream = false;
        if let Some(adapted) = p.adapt_body(&body) {
            let (b, s) = adapted?;
            (body, stream) = (Bytes::from(b), s);
        }
        let mut r = self.reply(self.client, false);
        if asks_for_usage(req, self.client) {
            // Billing needs the usage chunk; the client gets it only if it asked.
            if let Some(b) = formats::openai::request::ask_for_usage(&body, req.has_stream_options)
            {
                (body, r.strip_usage) = (b, true);
            }
        }
        let query = self.hdr.uri.query();
        let mut path = p.path(self.base, self.op, self.model, query, stream);
        if req.front == Front::StoredResponse {
            stored_path(&mut path, self.hdr.uri.path());
        }
        Ok(Planned::Send(Plan {
            path,
            body,
            translated: false,
            reply: r,
            dropped: Vec::new(),
        }))
    }

    /// Another API: the request translated for the provider's format.
    fn translated(&self) -> Result<Planned, ApiError> {
        let (req, p) = (self.req, self.p);
        let mut opts = p.request_options(self.model);
        opts.fields = req.fields;
        let state = req.state.as_ref();
        let from = state.and_then(|s| s.body.as_ref()).unwrap_or(&req.body);
        let t = formats::translate_request(self.client, p.format(), from, &opts)?;
        let body = match p.adapt_body(&t.body) {
            Some(adapted) => adapted?.0,
            None => t.body,
        };
        let mut r = self.reply(p.format(), t.include_usage);
        r.tool_names = t.tool_names;
        r.keep = state.and_then(|s| s.keep.clone());
        Ok(Planned::Send(Plan {
            path: p.path(self.base, self.op, self.model, None, t.stream),
            body: Bytes::from(body),
            translated: true,
            reply: r,
            dropped: t.dropped,
        }))
    }
}

/// What `front` asks of `backend`: its own operation, else the fallback, if supported.
fn operation(front: Front, backend: &Backend) -> Option<Operation> {
    let p = &*backend.provider;
    let supported = |op: &Operation| p.supports(*op);
    (front.operation(p.format()).filter(supported)).or_else(|| front.fallback().filter(supported))
}

/// A Responses request's stored state, where a target of its route translates it.
pub(super) async fn responses_state(
    st: &super::State,
    ctx: &super::Ctx,
    front: Front,
    route: &crate::route::Route,
    model: &str,
    body: &[u8],
) -> Result<Option<super::kept::Readied>, ApiError> {
    let owner = ctx.key.as_ref().map(|k| &*k.name);
    let translated = (route.targets.iter()).any(|t| translates_responses(&st.backends[t.backend]));
    super::kept::for_route(st, owner, front, translated, model, body).await
}

/// The field policy of a request: the key's rules over its route's.
pub(super) fn field_policy(
    key: Option<&crate::auth::Holder>,
    route: &crate::route::Route,
) -> crate::formats::fields::FieldPolicy {
    let rules = match key {
        Some(k) => k.fields.over(route.fields),
        None => route.fields,
    };
    crate::formats::fields::FieldPolicy {
        drop_unsupported: rules.drop_params.unwrap_or(false),
        reject_unknown: rules.reject_unknown.unwrap_or(false),
    }
}

/// Whether a Responses request to `backend` is translated (else it passes through to a
/// Responses API, which keeps its own state).
pub(super) fn translates_responses(backend: &Backend) -> bool {
    operation(Front::Responses, backend)
        .is_some_and(|op| !matches!(op, Operation::Responses | Operation::ResponsesInputTokens))
}

/// The provider's Responses path with the client's id (and operation) after it, before any
/// query: `/v1/responses/{id}/cancel`, Azure's `/openai/responses/{id}?api-version=…`.
fn stored_path(path: &mut String, client_path: &str) {
    let tail = client_path
        .strip_prefix("/v1/responses")
        .unwrap_or_default();
    let at = path.find('?').unwrap_or(path.len());
    path.insert_str(at, tail);
}

/// An OpenAI stream passing through that did not ask for its usage chunk.
fn asks_for_usage(req: &Request, client: Format) -> bool {
    client == Format::OpenAi
        && req.stream
        && !req.include_usage
        && matches!(req.front, Front::Chat | Front::Completions)
}

/// A front the backend does not serve: token counts are estimated here, the rest is a 400.
fn unserved(req: &Request, backend: &Backend, path: &str) -> Result<Planned, ApiError> {
    if req.front == Front::CountTokens {
        let n = formats::anthropic::count::estimate(&req.body)?;
        return Ok(Planned::Local(Bytes::from(format!(
            "{{\"input_tokens\":{n}}}"
        ))));
    }
    if req.front == Front::ResponsesInputTokens {
        let n = formats::responses::count::estimate(&req.body)?;
        return Ok(Planned::Local(Bytes::from(format!(
            "{{\"object\":\"response.input_tokens\",\"input_tokens\":{n}}}"
        ))));
    }
    if req.front == Front::StoredResponse {
        // Not in the gateway's store either (looked up first).
        let (id, _) = crate::fronts::stored_response(path).unwrap_or_default();
        return Err(formats::responses::history::response_not_found(id));
    }
    Err(ApiError::bad_request(format!(
        "{} is not available for model `{}`: its backend `{}` does not serve it.",
        req.front.path(),
        req.client_model,
        backend.name
    )))
}
