//! The admin listener's config endpoints: `GET /config` (the kept versions, the running one
//! first), `POST /config/reload` (re-read the files) and `POST /config/rollback?version=ID`.
//! Changing the config needs `[server] admin_token`, presented as a bearer token.

use super::{authorized, error, percent_decode, Answer};
use crate::gateway::AdminAccess;
use crate::reload::{Applied, Current, ReloadError};
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

pub async fn answer(
    current: &Arc<Current>,
    session: &ServerSession,
    access: &AdminAccess,
) -> Answer {
    let req = session.req_header();
    let post = req.method == http::Method::POST;
    match (req.uri.path(), post) {
        ("/config", false) => json(200, &current.versions_json()),
        ("/config/reload" | "/config/rollback", true) if access.token.is_none() => error(
            403,
            "config changes through the admin listener need [server] admin_token",
        ),
        ("/config/reload" | "/config/rollback", true) if !authorized(session, access) => {
            super::unauthorized()
        }
        ("/config/reload", true) => {
            let c = current.clone();
            outcome(tokio::task::spawn_blocking(move || c.reload("admin")).await)
        }
        ("/config/rollback", true) => {
            let Some(version) = version_arg(req.uri.query().unwrap_or_default()) else {
                return error(400, "name the version to roll back to: ?version=ID");
            };
            let c = current.clone();
            outcome(tokio::task::spawn_blocking(move || c.rollback(&version)).await)
        }
        ("/config" | "/config/reload" | "/config/rollback", _) => error(
            405,
            "method not allowed (GET /config; POST to reload or roll back)",
        ),
        _ => error(404, "not found"),
    }
}

fn version_arg(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "version")
        .map(|(_, v)| percent_decode(v))
        .filter(|v| !v.is_empty())
}

fn outcome(done: Result<Result<Applied, ReloadError>, tokio::task::JoinError>) -> Answer {
    match done {
        Ok(Ok(applied)) => {
            let mut body = serde_json::to_value(&applied).unwrap_or_default();
            body["status"] = "applied".into();
            json(200, &body)
        }
        Ok(Err(e)) => {
            let status = match e {
                ReloadError::Invalid(_) => 400,
                ReloadError::UnknownVersion(_) => 404,
            };
            let body = serde_json::json!({
                "status": "rejected",
                "error": {"message": e.to_string(), "details": e.details()},
            });
            json(status, &body)
        }
        Err(_) => error(500, "the reload failed"),
    }
}

fn json(status: u16, v: &serde_json::Value) -> Answer {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    (status, "application/json", body)
}
