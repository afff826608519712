//! What the format tests share: the options they translate with, one translator run under the
//! field policy as `translate_request` runs it, and JSON bodies in and out.

use crate::error::ApiError;
use crate::formats::fields::{FieldPolicy, Fields};
use crate::formats::{MaxTokensField, ReplyContext, RequestOptions, Translated, Usage};
use serde_json::{json, Value};

/// A translation to model `m`: 4,096 max tokens when the client sets none, no cache points,
/// the default field policy. Tests needing other options update it (`..OPTS`).
pub(crate) const OPTS: RequestOptions<'static> = RequestOptions {
    model: "m",
    default_max_tokens: 4096,
    max_tokens_field: MaxTokensField::MaxCompletionTokens,
    cache_points: false,
    fields: FieldPolicy::DEFAULT,
};

/// `drop_params` on: what the target cannot express is dropped and named, not refused.
pub(crate) const DROP_PARAMS: FieldPolicy = FieldPolicy {
    drop_unsupported: true,
    reject_unknown: false,
};

/// A reply to a client that asked for model `c`.
pub(crate) const CTX: ReplyContext<'static> = ReplyContext {
    client_model: "c",
    created: 1,
    tool_names: None,
};

/// Runs one translator with its own field list, as `translate_request` does, so the fields it
/// dropped are in `dropped`.
pub(crate) fn with_fields(
    opts: &RequestOptions<'_>,
    translate: impl FnOnce(&Fields) -> Result<Translated, ApiError>,
) -> Result<Translated, ApiError> {
    let f = Fields::new(opts.fields);
    let mut t = translate(&f)?;
    t.dropped = f.take();
    Ok(t)
}

/// A JSON value as a request or reply body.
pub(crate) fn bytes_of(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// A translated body read back as JSON.
pub(crate) fn value_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

/// The field a refusal names (`""` when none); a refusal is a 400.
pub(crate) fn refused_param(r: Result<Translated, ApiError>) -> String {
    let e = r.unwrap_err();
    assert_eq!(e.status, 400, "{e:?}");
    e.param.map(|p| p.into_owned()).unwrap_or_default()
}

/// A chat request with one user message, and `extra`'s fields.
pub(crate) fn user(extra: Value) -> Value {
    let mut v = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// A format's reply translator (`response::to_chat`, `from_chat`).
pub(crate) type ReplyTranslator =
    fn(&[u8], &ReplyContext<'_>) -> Result<(Vec<u8>, Usage), ApiError>;

/// A reply translator run over a JSON body: the reply as JSON, and its usage.
pub(crate) fn reply(
    translate: ReplyTranslator,
    body: &Value,
    ctx: &ReplyContext<'_>,
) -> (Value, Usage) {
    let (b, u) = translate(&bytes_of(body), ctx).unwrap();
    (value_of(&b), u)
}
