//! Shape-neutral API errors. The gateway, the translators and the upstream error parsers all
//! produce an [`ApiError`]; only the client's front renders it, in OpenAI's
//! `{"error":{message,type,param,code}}` or Anthropic's `{"type":"error","error":{type,message}}`
//! (see `formats::openai::error` and `formats::anthropic::error`).

use std::borrow::Cow;

/// What went wrong, independent of any API's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    Billing,
    Permission,
    NotFound,
    TooLarge,
    RateLimit,
    /// A server-side failure (5xx) of the gateway or a provider.
    Server,
    Timeout,
    /// The provider is overloaded (Anthropic 529, OpenAI 503 `server_is_overloaded`).
    Overloaded,
    /// Nothing can serve the request (e.g. every backend of the route is disabled).
    Unavailable,
}

impl ErrorKind {
    /// The kind a provider's HTTP status means when its body says nothing more precise.
    pub fn of_status(status: u16) -> ErrorKind {
        match status {
            401 => ErrorKind::Authentication,
            402 => ErrorKind::Billing,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::TooLarge,
            429 => ErrorKind::RateLimit,
            503 | 529 => ErrorKind::Overloaded,
            504 => ErrorKind::Timeout,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Server,
        }
    }

    /// A static label for the access log.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Billing => "billing",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not_found",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::Server => "server_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unavailable => "unavailable",
        }
    }
}

/// An error answered to a client. `status` is the HTTP status in OpenAI terms; a front may map
/// it (Anthropic clients see 529 for `Overloaded`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {message}")]
pub struct ApiError {
    pub status: u16,
    pub kind: ErrorKind,
    /// A machine-readable code (OpenAI's `code`), when there is one.
    pub code: Option<Cow<'static, str>>,
    /// The request field at fault (OpenAI's `param`), e.g. `messages[2].content[0].image_url`.
    pub param: Option<Cow<'static, str>>,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, kind: ErrorKind, code: Option<&'static str>, message: String) -> Self {
        ApiError {
            status,
            kind,
            code: code.map(Cow::Borrowed),
            param: None,
            message,
        }
    }

    pub fn with_param(mut self, p: impl Into<Cow<'static, str>>) -> Self {
        self.param = Some(p.into());
        self
    }

    /// A static label for the access log: the gateway's own code when it is static, else
    /// the kind.
    pub fn label(&self) -> &'static str {
        match &self.code {
            Some(Cow::Borrowed(c)) => c,
            _ => self.kind.label(),
        }
    }

    /// A limit refused the request: 429, `insufficient_quota` for a quota or budget,
    /// `rate_limit_exceeded` otherwise.
    pub fn limited(message: String, quota: bool) -> Self {
        match quota {
            true => Self::new(429, ErrorKind::Billing, Some("insufficient_quota"), message),
            false => Self::new(
                429,
                ErrorKind::RateLimit,
                Some("rate_limit_exceeded"),
                message,
            ),
        }
    }
    /// The request's own reservation is larger than a whole token or spend limit: it can never
    /// pass, so it is not a 429 (clients retry those).
    pub fn exceeds_limit(message: String) -> Self {
        Self::new(
            400,
            ErrorKind::InvalidRequest,
            Some("request_exceeds_limit"),
            message,
        )
    }
    /// The limit store cannot be reached and the policy is `fail_closed`.
    pub fn limits_unavailable() -> Self {
        Self::new(
            503,
            ErrorKind::Unavailable,
            Some("limits_unavailable"),
            "Usage limits cannot be checked right now (the limit store is unreachable); try again shortly.".into(),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, ErrorKind::InvalidRequest, None, message.into())
    }
    /// A request field the target provider cannot express: 400 naming the field.
    pub fn unsupported(param: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(
            400,
            ErrorKind::InvalidRequest,
            Some("unsupported_parameter"),
            message.into(),
        )
        .with_param(param)
    }
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(
            400,
            ErrorKind::InvalidRequest,
            Some("invalid_json"),
            message.into(),
        )
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            401,
            ErrorKind::Authentication,
            Some("invalid_api_key"),
            message.into(),
        )
    }
    /// The request line (method and target) is longer than the gateway accepts.
    pub fn uri_too_long(limit: usize) -> Self {
        Self::new(
            414,
            ErrorKind::TooLarge,
            Some("uri_too_long"),
            format!("The request line is longer than the gateway's limit of {limit} bytes."),
        )
    }
    /// The request head (line and headers) is larger than the gateway accepts.
    pub fn head_too_large(limit: usize) -> Self {
        Self::new(
            431,
            ErrorKind::TooLarge,
            Some("request_header_fields_too_large"),
            format!("The request's headers are larger than the gateway's limit of {limit} bytes."),
        )
    }
    pub fn unknown_url(method: &str, path: &str) -> Self {
        Self::new(
            404,
            ErrorKind::NotFound,
            Some("unknown_url"),
            format!("Unknown request URL: {method} {path}"),
        )
    }
    /// The caller's key may not use this model (its `models` list).
    pub fn model_not_allowed(key: &str, model: &str) -> Self {
        Self::new(
            403,
            ErrorKind::Permission,
            Some("model_not_allowed"),
            format!("The API key `{key}` may not use the model `{model}`."),
        )
        .with_param("model")
    }

    /// The client's address is not permitted (the listener's or the key's rules).
    pub fn address_not_allowed(message: &str) -> Self {
        Self::new(
            403,
            ErrorKind::Permission,
            Some("address_not_allowed"),
            message.to_string(),
        )
    }

    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            404,
            ErrorKind::NotFound,
            Some("model_not_found"),
            format!("The model `{model}` does not exist or no route is configured for it."),
        )
        .with_param("model")
    }
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            ErrorKind::InvalidRequest,
            Some("method_not_allowed"),
            format!("Method {method} is not allowed for {path}"),
        )
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            ErrorKind::TooLarge,
            Some("request_too_large"),
            format!("Request body is larger than the gateway's limit of {limit} bytes."),
        )
    }
    pub fn no_enabled_backend(model: &str) -> Self {
        Self::new(
            503,
            ErrorKind::Unavailable,
            Some("backend_disabled"),
            format!("No backend for model `{model}` is enabled (is its API key set?)."),
        )
    }
    /// Every target is at its concurrency cap (after the route's queue time).
    pub fn backends_busy(model: &str) -> Self {
        Self::new(
            503,
            ErrorKind::Unavailable,
            Some("backends_busy"),
            format!("Every backend for model `{model}` is at capacity; retry shortly."),
        )
    }
    /// Every target asked (Retry-After) to be left alone for now.
    pub fn upstream_rate_limited(model: &str) -> Self {
        Self::new(
            429,
            ErrorKind::RateLimit,
            Some("upstream_rate_limited"),
            format!("Every backend for model `{model}` asked to wait (rate limited); retry after the time given."),
        )
    }
    /// No target can take a request now (ejected, cooling down, failing health checks).
    pub fn backends_unavailable(model: &str, why: &str) -> Self {
        Self::new(
            503,
            ErrorKind::Unavailable,
            Some("no_available_backend"),
            format!("No backend for model `{model}` is available now ({why})."),
        )
    }
    pub fn upstream_unreachable(model: &str, attempts: u32) -> Self {
        Self::new(
            502,
            ErrorKind::Server,
            Some("upstream_unreachable"),
            format!("No upstream for model `{model}` could be reached ({attempts} attempt(s))."),
        )
    }
    /// The upstream was reached and the request sent, then the connection was closed or broke
    /// before a reply: the same code as `upstream_unreachable`, a message that says which.
    pub fn upstream_lost(model: &str, attempts: u32) -> Self {
        Self::new(
            502,
            ErrorKind::Server,
            Some("upstream_unreachable"),
            format!(
                "The upstream for model `{model}` closed or broke the connection after the \
                 request was sent ({attempts} attempt(s))."
            ),
        )
    }
    /// A backend's credentials could not be obtained (an OAuth token refresh failed).
    /// `reason` must not hold secrets.
    pub fn credentials_unavailable(backend: &str, reason: &str) -> Self {
        Self::new(
            503,
            ErrorKind::Unavailable,
            Some("upstream_credentials_unavailable"),
            format!("Backend `{backend}` has no valid access token: {reason}"),
        )
    }
    pub fn upstream_timeout(model: &str) -> Self {
        Self::new(
            504,
            ErrorKind::Timeout,
            Some("upstream_timeout"),
            format!("The upstream for model `{model}` did not answer in time."),
        )
    }
    /// The upstream's reply could not be understood (bad JSON, a broken stream).
    pub fn bad_upstream(message: impl Into<String>) -> Self {
        Self::new(
            502,
            ErrorKind::Server,
            Some("bad_upstream_response"),
            message.into(),
        )
    }
    pub fn stream_broken() -> Self {
        Self::new(
            502,
            ErrorKind::Server,
            Some("upstream_stream_error"),
            "The upstream connection failed during the response.".into(),
        )
    }
    pub fn internal() -> Self {
        Self::new(
            500,
            ErrorKind::Server,
            None,
            "Internal gateway error.".into(),
        )
    }
}
