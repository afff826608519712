//! OpenAI's stored-response endpoints (`GET`/`DELETE /v1/responses/{id}`, `POST …/cancel`,
//! `GET …/input_items`). They carry no body and no model, so the client names the model its
//! response came from in `x-tollgate-model`, and the request takes that model's route. They
//! pass through to OpenAI and Azure only (Tollgate keeps no responses; elsewhere a 400), and
//! are never billed: reading a response back generates nothing.

use super::{exchange, plan, read_body, ApiError, Ctx, Handled, State};
use crate::fronts::Front;
use pingora::proxy::Session;
use std::sync::Arc;

/// The header naming the model whose route a stored-response request takes.
pub const MODEL_HEADER: &str = "x-tollgate-model";

pub(super) async fn handle(
    st: &State,
    session: &mut Session,
    ctx: &mut Ctx,
) -> Result<(), Handled> {
    let hdr = session.req_header();
    let model = hdr
        .headers
        .get(MODEL_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let Some(model) = model else {
        return Err(ApiError::bad_request(format!(
            "`{} {}` carries no model to route by: name the model the response came from in the `{MODEL_HEADER}` header.",
            hdr.method,
            Front::StoredResponse.path()
        ))
        .with_param(MODEL_HEADER)
        .into());
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
    };
    exchange::run(st, session, ctx, m.route, req).await
}
