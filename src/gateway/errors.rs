//! Errors the gateway answers itself, in the OpenAI error shape
//! `{"error":{"message","type","param","code"}}`.

use bytes::Bytes;
use serde::Serialize;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {message}")]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub param: Option<&'static str>,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, code: Option<&'static str>, message: String) -> Self {
        ApiError {
            status,
            kind,
            code,
            param: None,
            message,
        }
    }

    pub fn with_param(mut self, p: &'static str) -> Self {
        self.param = Some(p);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", None, message.into())
    }
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(
            400,
            "invalid_request_error",
            Some("invalid_json"),
            message.into(),
        )
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            401,
            "authentication_error",
            Some("invalid_api_key"),
            message.into(),
        )
    }
    pub fn unknown_url(method: &str, path: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            Some("unknown_url"),
            format!("Unknown request URL: {method} {path}"),
        )
    }
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            Some("model_not_found"),
            format!("The model `{model}` does not exist or no route is configured for it."),
        )
        .with_param("model")
    }
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            "invalid_request_error",
            Some("method_not_allowed"),
            format!("Method {method} is not allowed for {path}"),
        )
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "invalid_request_error",
            Some("request_too_large"),
            format!("Request body is larger than the gateway's limit of {limit} bytes."),
        )
    }
    pub fn no_enabled_backend(model: &str) -> Self {
        Self::new(
            503,
            "service_unavailable_error",
            Some("backend_disabled"),
            format!("No backend for model `{model}` is enabled (is its API key set?)."),
        )
    }
    pub fn upstream_unreachable(model: &str, attempts: u32) -> Self {
        Self::new(
            502,
            "server_error",
            Some("upstream_unreachable"),
            format!("No upstream for model `{model}` could be reached ({attempts} attempt(s))."),
        )
    }
    pub fn upstream_timeout(model: &str) -> Self {
        Self::new(
            504,
            "server_error",
            Some("upstream_timeout"),
            format!("The upstream for model `{model}` did not answer in time."),
        )
    }
    pub fn internal() -> Self {
        Self::new(500, "server_error", None, "Internal gateway error.".into())
    }

    pub fn body(&self) -> Bytes {
        #[derive(Serialize)]
        struct Inner<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            param: Option<&'a str>,
            code: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Outer<'a> {
            error: Inner<'a>,
        }
        let v = Outer {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param,
                code: self.code,
            },
        };
        Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_has_all_four_keys() {
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::model_not_found("m").body()).unwrap();
        let e = &v["error"];
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["code"], "model_not_found");
        assert_eq!(e["param"], "model");
        assert!(e["message"].as_str().unwrap().contains("`m`"));
        let v: serde_json::Value = serde_json::from_slice(&ApiError::internal().body()).unwrap();
        assert!(v["error"].as_object().unwrap().contains_key("param"));
        assert!(v["error"]["code"].is_null());
    }
}
