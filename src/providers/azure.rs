//! Azure OpenAI deployments: `/openai/deployments/{deployment}/{operation}?api-version=…`
//! with the `api-key` header. The deployment is the target model; the body is OpenAI's.

use super::{secret_header, Operation, Provider};
use crate::formats::{Format, MaxTokensField, RequestOptions};
use http::HeaderValue;
use pingora::http::RequestHeader;

pub struct Azure {
    key: Option<HeaderValue>,
    api_version: String,
}

impl Azure {
    pub fn new(key: Option<&str>, api_version: &str) -> Azure {
        Azure {
            key: key.and_then(secret_header),
            api_version: api_version.to_string(),
        }
    }
}

impl Provider for Azure {
    fn format(&self) -> Format {
        Format::OpenAi
    }

    fn supports(&self, op: Operation) -> bool {
        !matches!(
            op,
            Operation::Messages | Operation::CountTokens | Operation::ResponsesInputTokens
        )
    }

    fn path(
        &self,
        base: &str,
        op: Operation,
        model: &str,
        query: Option<&str>,
        _stream: bool,
    ) -> String {
        let tail = op.v1_path().trim_start_matches("/v1");
        if op == Operation::Responses {
            // Not per deployment: the deployment is the body's `model`. A stored response's
            // reads take the client's query (`include`, `limit`, `after`, `order`, `stream`).
            let mut path = format!("{base}/openai{tail}?api-version={}", self.api_version);
            let client = query.into_iter().flat_map(|q| q.split('&'));
            for pair in client.filter(|p| !p.is_empty() && !p.starts_with("api-version=")) {
                path.push('&');
                path.push_str(pair);
            }
            return path;
        }
        let deployment = super::segment(model);
        format!(
            "{base}/openai/deployments/{deployment}{tail}?api-version={}",
            self.api_version
        )
    }

    fn authorize(
        &self,
        req: &mut RequestHeader,
        _body: &[u8],
        _token: Option<&str>,
    ) -> pingora::Result<()> {
        if let Some(k) = &self.key {
            req.insert_header("api-key", k.clone())?;
        }
        Ok(())
    }

    fn request_options<'a>(&self, model: &'a str) -> RequestOptions<'a> {
        RequestOptions {
            model,
            default_max_tokens: 0,
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            cache_points: false,
            fields: crate::formats::fields::FieldPolicy::DEFAULT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_path() {
        let a = Azure::new(Some("k"), "2024-10-21");
        assert_eq!(
            a.path(
                "",
                Operation::Chat,
                "gpt-4o mini/x",
                Some("ignored=1"),
                false
            ),
            "/openai/deployments/gpt-4o%20mini%2Fx/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            a.path("/base", Operation::Embeddings, "emb", None, false),
            "/base/openai/deployments/emb/embeddings?api-version=2024-10-21"
        );
    }

    #[test]
    fn responses_keep_the_clients_query_but_not_its_api_version() {
        let a = Azure::new(Some("k"), "2025-04-01-preview");
        let q = Some("limit=2&api-version=1999-01-01&&after=msg_1");
        assert_eq!(
            a.path("", Operation::Responses, "dep", q, false),
            "/openai/responses?api-version=2025-04-01-preview&limit=2&after=msg_1"
        );
        assert_eq!(
            a.path("", Operation::Responses, "dep", None, false),
            "/openai/responses?api-version=2025-04-01-preview"
        );
    }
}
