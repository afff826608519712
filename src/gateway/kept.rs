//! Responses state on translated routes: before translation, `previous_response_id` and
//! `item_reference` items are replaced by what the response store holds for the caller's key
//! (module `formats::responses::history`); after a complete reply, the Response as sent to the
//! client is kept (unless the request said `store: false`). OpenAI and Azure routes pass all of
//! this through: they keep their own.

use crate::error::ApiError;
use crate::error::ErrorKind;
use crate::formats::responses::history::{self, Stateful};
use crate::formats::responses::response::Ids;
use crate::fronts::Front;
use crate::store::responses::{Parts, ResponseStore, ResponseStoreError, StoredResponse};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// What a translated reply keeps, fixed at admission.
pub(crate) struct Keep {
    store: Arc<dyn ResponseStore>,
    owner: Option<String>,
    model: String,
    /// The request's input items, expanded.
    input: history::Input,
    instructions: Option<String>,
}

/// A Responses request readied for translated targets.
pub(crate) struct Readied {
    /// The body with its history expanded, when it referred to any.
    pub body: Option<Bytes>,
    /// Set unless the request said `store: false`.
    pub keep: Option<Arc<Keep>>,
}

/// Expands what `body` refers to from `store`, as `owner` sees it.
pub(super) async fn ready(
    store: &Arc<dyn ResponseStore>,
    owner: Option<&str>,
    model: &str,
    body: &[u8],
) -> Result<Readied, ApiError> {
    let s = Stateful::parse(body)?;
    let mut history = Vec::new();
    if let Some(id) = s.previous() {
        let prev = store.get(owner, id).await.map_err(unavailable)?;
        let prev = prev.ok_or_else(|| history::previous_not_found(id))?;
        history = prev.input_items();
        history.extend(prev.output());
    }
    let refs: Vec<String> = s.references().into_iter().map(str::to_string).collect();
    let mut items = HashMap::with_capacity(refs.len());
    for id in refs.iter() {
        let holder = store.holding(owner, id).await.map_err(unavailable)?;
        if let Some(item) = holder.and_then(|r| r.item(id)) {
            items.insert(id.clone(), item);
        }
    }
    let stored = s.stored();
    let e = s.expand(history, &items)?;
    let keep = stored.then(|| {
        Arc::new(Keep {
            store: store.clone(),
            owner: owner.map(str::to_string),
            model: model.to_string(),
            input: e.input,
            instructions: e.instructions,
        })
    });
    Ok(Readied {
        body: e.body.map(Bytes::from),
        keep,
    })
}

impl Keep {
    /// Keeps `response`, the Response JSON the client gets. Called before its last bytes are
    /// written, so a client's next turn always finds it. A store that fails is logged: the
    /// reply itself still goes out.
    pub(crate) async fn put(&self, response: &[u8]) {
        self.put_with(response, None).await
    }

    /// [`Keep::put`] with the ids the translator wrote `response` with, when it says them
    /// (else they are read from it).
    pub(crate) async fn put_with(&self, response: &[u8], known: Option<Ids>) {
        let Some((id, output_ids)) = known.or_else(|| ids(response)) else {
            return;
        };
        let mut ids = self.input.ids(&id);
        // The reply the translator wrote (so JSON), and the input as JSON.
        let input = self.input.to_json(&ids);
        let (Ok(response), Ok(input)) = (std::str::from_utf8(response), input) else {
            return;
        };
        ids.extend(output_ids);
        let r = StoredResponse::new(Parts {
            id: &id,
            owner: self.owner.as_deref(),
            model: &self.model,
            response,
            input: &input,
            instructions: self.instructions.as_deref(),
            item_ids: Some(&ids),
        });
        if let Err(e) = self.store.put(r).await {
            log::warn!("{e}");
        }
    }
}

/// A Response's id and its output items' ids: scanned (`formats::scan::response_ids`, a third
/// of serde's cost), or read by serde when the scan declines (every item an object; an id
/// that is not a string is none).
fn ids(response: &[u8]) -> Option<Ids> {
    if let Some((id, items)) = crate::formats::scan::response_ids(response) {
        return Some((
            id.to_string(),
            items.into_iter().map(str::to_string).collect(),
        ));
    }
    #[derive(Deserialize)]
    struct Head {
        id: String,
        #[serde(default)]
        output: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        #[serde(default)]
        id: Option<Value>,
    }
    let head = serde_json::from_slice::<Head>(response).ok()?;
    let items = head.output.into_iter().filter_map(|o| match o.id {
        Some(Value::String(id)) => Some(id),
        _ => None,
    });
    Some((head.id, items.collect()))
}

/// The store could not be read: nothing is sent rather than a request without its history.
pub(super) fn unavailable(e: ResponseStoreError) -> ApiError {
    log::warn!("{e}");
    ApiError::new(
        503,
        ErrorKind::Unavailable,
        Some("store_unavailable"),
        "Stored responses cannot be read right now; try again shortly.".into(),
    )
}

/// The state of a Responses request whose route has a target that translates it
/// (`translated`; a route of OpenAI and Azure targets only passes it through untouched); other
/// fronts have none.
pub(super) async fn for_route(
    st: &super::State,
    owner: Option<&str>,
    front: Front,
    translated: bool,
    model: &str,
    body: &[u8],
) -> Result<Option<Readied>, ApiError> {
    if front != Front::Responses || !translated {
        return Ok(None);
    }
    ready(&st.responses, owner, model, body).await.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::responses::MemoryResponses;
    use serde_json::json;

    #[tokio::test]
    async fn a_kept_response_is_indexed_by_the_ids_its_json_holds() {
        let store: Arc<dyn ResponseStore> = Arc::new(MemoryResponses::new(
            std::time::Duration::from_secs(60),
            1 << 20,
        ));
        let keep = Keep {
            store: store.clone(),
            owner: Some("k".into()),
            model: "m".into(),
            input: history::Input::Items(vec![
                json!({"type": "message", "role": "user", "content": "hi"}),
                json!({"id": "fc_given", "type": "function_call"}),
            ]),
            instructions: None,
        };
        let response = json!({"id": "resp_abc", "object": "response", "output": [
            {"id": "msg_\u{e9}", "type": "message"}, {"type": "reasoning"}, {"id": 3}]});
        keep.put(response.to_string().as_bytes()).await;
        let kept = store.get(Some("k"), "resp_abc").await.unwrap().unwrap();
        let given: Vec<&str> = kept.item_ids().collect();
        assert_eq!(given, ["msg_abc_in0", "fc_given", "msg_\u{e9}"]);
        // Read back from a shared store's form, the ids are read from the JSON.
        let read: StoredResponse =
            serde_json::from_str(&serde_json::to_string(&*kept).unwrap()).unwrap();
        let read_ids: Vec<&str> = read.item_ids().collect();
        assert_eq!(read_ids, given, "the same ids as read from the JSON");
        for id in given {
            let holder = store.holding(Some("k"), id).await.unwrap();
            assert_eq!(holder.as_deref().map(StoredResponse::id), Some("resp_abc"));
        }
    }
}
