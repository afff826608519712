//! Bodies of OpenAI's stored-response endpoints when the gateway answers them from its own
//! store: the deletion notice, a page of `input_items` (OpenAI's list shape, `limit`, `after`,
//! `order`), and the refusal to cancel a response that was not created in the background.

use crate::error::ApiError;
use serde_json::{json, Value};

/// `DELETE /v1/responses/{id}`.
pub fn deleted(id: &str) -> Vec<u8> {
    json!({"id": id, "object": "response", "deleted": true})
        .to_string()
        .into_bytes()
}

/// `POST /v1/responses/{id}/cancel` on a response that was not created with `background`.
pub fn not_cancellable() -> ApiError {
    ApiError::bad_request("Cannot cancel a synchronous response.")
}

/// How a page of `input_items` is asked for.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    /// Newest first (`desc`, OpenAI's default) or oldest first.
    pub desc: bool,
    pub after: Option<String>,
}

impl Page {
    /// From the query string: `limit` 1–100 (default 20), `order` `asc`|`desc`, `after` an id;
    /// anything else (`include[]`) changes nothing here.
    pub fn parse(query: Option<&str>) -> Result<Page, ApiError> {
        let mut page = Page {
            limit: 20,
            desc: true,
            after: None,
        };
        for (k, v) in query
            .unwrap_or("")
            .split('&')
            .filter_map(|p| p.split_once('='))
        {
            match k {
                "limit" => match v.parse::<usize>() {
                    Ok(n @ 1..=100) => page.limit = n,
                    _ => return Err(bad("limit", "must be an integer from 1 to 100.")),
                },
                "order" => match v {
                    "asc" => page.desc = false,
                    "desc" => page.desc = true,
                    _ => return Err(bad("order", "must be `asc` or `desc`.")),
                },
                "after" if !v.is_empty() => page.after = Some(v.to_string()),
                _ => {}
            }
        }
        Ok(page)
    }

    /// The list body for `items` (oldest first, as kept).
    pub fn list(&self, mut items: Vec<Value>) -> Result<Vec<u8>, ApiError> {
        if self.desc {
            items.reverse();
        }
        let start = match &self.after {
            None => 0,
            Some(a) => match items.iter().position(|i| i["id"] == a.as_str()) {
                Some(at) => at + 1,
                None => return Err(bad("after", "names no item of this response.")),
            },
        };
        let rest = items.len().saturating_sub(start);
        let data: Vec<Value> = items.into_iter().skip(start).take(self.limit).collect();
        let id = |i: Option<&Value>| i.map_or(Value::Null, |i| i["id"].clone());
        let body = json!({
            "object": "list",
            "data": &data,
            "first_id": id(data.first()),
            "last_id": id(data.last()),
            "has_more": rest > data.len(),
        });
        Ok(body.to_string().into_bytes())
    }
}

fn bad(param: &'static str, why: &str) -> ApiError {
    ApiError::bad_request(format!("`{param}` {why}")).with_param(param)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({"id": format!("i{i}")})).collect()
    }

    fn list(q: &str, n: usize) -> Value {
        let body = Page::parse(Some(q)).unwrap().list(items(n)).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn pages_newest_first_by_default() {
        let v = list("", 3);
        assert_eq!(v["object"], "list");
        assert_eq!(
            (v["first_id"].as_str(), v["last_id"].as_str()),
            (Some("i2"), Some("i0"))
        );
        assert_eq!(v["has_more"], false);
        let v = list("limit=2&order=asc", 5);
        assert_eq!(v["data"], json!([{"id": "i0"}, {"id": "i1"}]));
        assert_eq!(v["has_more"], true);
        let v = list("limit=2&order=asc&after=i3", 5);
        assert_eq!(v["data"], json!([{"id": "i4"}]));
        assert_eq!(v["has_more"], false);
        let v = list("include[]=x", 0);
        assert_eq!(
            (v["first_id"].clone(), v["data"].clone()),
            (Value::Null, json!([]))
        );
    }

    #[test]
    fn bad_queries_name_their_param() {
        for (q, p) in [
            ("limit=0", "limit"),
            ("limit=x", "limit"),
            ("order=up", "order"),
        ] {
            assert_eq!(Page::parse(Some(q)).unwrap_err().param.as_deref(), Some(p));
        }
        let e = Page::parse(Some("after=zz"))
            .unwrap()
            .list(items(2))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("after"));
        let d: Value = serde_json::from_slice(&deleted("resp_1")).unwrap();
        assert_eq!(
            d,
            json!({"id": "resp_1", "object": "response", "deleted": true})
        );
    }
}
