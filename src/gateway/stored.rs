//! OpenAI's stored-response endpoints (`GET`/`DELETE /v1/responses/{id}`, `POST …/cancel`,
//! `GET …/input_items`). A response of a translated route is answered from the gateway's own
//! store (module `kept`), for the key that created it. Any other carries no body and no model,
//! so the client names the model its response came from in `x-tollgate-model`, and the request
//! passes through that model's route to OpenAI or Azure, which keep their own. An id neither
//! knows is OpenAI's 404. They are never billed: reading a response back generates nothing.

use super::body::read_body;
use super::ctx::Ctx;
use super::failure::Handled;
use super::respond::write_json;
use super::state::State;
use super::Session;
use super::{exchange, kept, plan};
use crate::error::ApiError;
use crate::formats::responses::history::response_not_found;
use crate::formats::responses::stored::{deleted, not_cancellable, Page};
use crate::fronts::Front;
use crate::store::responses::StoredResponse;
use bytes::Bytes;
use std::sync::Arc;

/// The header naming the model whose route a stored-response request takes.
pub const MODEL_HEADER: &str = "x-tollgate-model";

pub(super) async fn handle(
    st: &State,
    session: &mut Session,
    ctx: &mut Ctx,
) -> Result<(), Handled> {
    let path = session.req_header().uri.path().to_string();
    let (id, op) = crate::fronts::stored_response(&path).unwrap_or_default();
    let owner = ctx.key.as_ref().map(|k| k.name.to_string());
    let local = st.responses.get(owner.as_deref(), id).await;
    if let Some(r) = local.map_err(kept::unavailable)? {
        return serve(st, session, ctx, &r, op).await;
    }
    let hdr = session.req_header();
    let model = hdr
        .headers
        .get(MODEL_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    // Not kept here, and no route to ask: unknown, as OpenAI says it.
    let Some(model) = model else {
        return Err(response_not_found(id).into());
    };
    let stream = hdr
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "stream=true"));
    let Some(m) = st.router.find(&model) else {
        return Err(ApiError::model_not_found(&model).into());
    };
    ctx.model_label = Some(m.model_label.clone());
    ctx.route = Some(m.route.name.clone());
    let client_model: Arc<str> = Arc::from(model);
    ctx.model = Some(client_model.clone());
    ctx.unbilled = true;
    let body = read_body(session, st.max_body_bytes).await?;
    let req = plan::Request {
        front: Front::StoredResponse,
        body,
        model_span: 0..0,
        client_model,
        stream,
        has_stream_options: false,
        include_usage: false,
        max_tokens: 0,
        fields: Default::default(),
        state: None,
    };
    let route = m.route;
    exchange::Exchange {
        st,
        session,
        ctx,
        route,
        req,
    }
    .run()
    .await
}

/// Answers from the gateway's store: the Response, its input items, its deletion; a stored
/// response was never a background one, so it cannot be cancelled.
async fn serve(
    st: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    r: &StoredResponse,
    op: &str,
) -> Result<(), Handled> {
    ctx.model = Some(Arc::from(r.model()));
    ctx.unbilled = true;
    let method = session.req_header().method.clone();
    let body = match (op, &method) {
        ("", &http::Method::GET) => Bytes::copy_from_slice(r.response().as_bytes()),
        ("", &http::Method::DELETE) => {
            let owner = ctx.key.as_ref().map(|k| &*k.name);
            let gone = st.responses.delete(owner, r.id()).await;
            if !gone.map_err(kept::unavailable)? {
                return Err(response_not_found(r.id()).into());
            }
            Bytes::from(deleted(r.id()))
        }
        ("input_items", _) => {
            let page = Page::parse(session.req_header().uri.query())?;
            Bytes::from(page.list(r.input_items())?)
        }
        _ => return Err(not_cancellable().into()),
    };
    write_json(session, ctx, 200, body, false)
        .await
        .map_err(Handled::Abort)
}
