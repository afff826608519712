//! AWS Bedrock's Converse API: `/model/{id}/converse` and `/converse-stream` (and `/invoke`
//! for embedding models), signed with SigV4 over the final bytes (`sigv4.rs`), or a Bedrock API key.

use super::sigv4::Signer;
use super::{secret_header, segment, Embedded, Operation, Provider};
use crate::config::AwsAuth;
use crate::error::ApiError;
use crate::formats::bedrock::embeddings;
use crate::formats::openai::embeddings::EmbeddingRequest;
use crate::formats::{Format, MaxTokensField, RequestOptions};
use aws_credential_types::Credentials;
use http::HeaderValue;
use pingora::http::RequestHeader;
use std::time::SystemTime;

/// Bedrock's SigV4 signing name (the host says `bedrock-runtime`, the scope says `bedrock`).
const SERVICE: &str = "bedrock";

enum Auth {
    SigV4(Signer),
    Bearer(Option<HeaderValue>),
}

pub struct Bedrock {
    auth: Auth,
    default_max_tokens: u32,
}

impl Bedrock {
    pub fn new(region: &str, auth: &AwsAuth, default_max_tokens: u32) -> Bedrock {
        let auth = match auth {
            AwsAuth::Keys {
                access_key_id,
                secret_access_key,
                session_token,
            } => Auth::SigV4(Signer::new(
                Credentials::new(
                    access_key_id.expose(),
                    secret_access_key.expose(),
                    session_token.as_ref().map(|t| t.expose().to_string()),
                    None,
                    "tollgate-config",
                ),
                region,
                SERVICE,
            )),
            AwsAuth::ApiKey(k) => Auth::Bearer(secret_header(&format!("Bearer {}", k.expose()))),
        };
        Bedrock {
            auth,
            default_max_tokens,
        }
    }
}

impl Provider for Bedrock {
    fn format(&self) -> Format {
        Format::Bedrock
    }

    fn supports(&self, op: Operation) -> bool {
        matches!(op, Operation::Chat | Operation::Embeddings)
    }

    fn path(
        &self,
        base: &str,
        op: Operation,
        model: &str,
        _query: Option<&str>,
        stream: bool,
    ) -> String {
        let method = match (op, stream) {
            (Operation::Embeddings, _) => "invoke",
            (_, true) => "converse-stream",
            (_, false) => "converse",
        };
        // Joined, not `format!` (~1.7k instructions a request).
        crate::formats::ids::concat(&[base, "/model/", &segment(model), "/", method])
    }

    fn authorize(
        &self,
        req: &mut RequestHeader,
        body: &[u8],
        _token: Option<&str>,
    ) -> pingora::Result<()> {
        match &self.auth {
            Auth::Bearer(Some(h)) => req.insert_header(http::header::AUTHORIZATION, h.clone()),
            Auth::Bearer(None) => Ok(()),
            Auth::SigV4(s) => s.sign(req, body, SystemTime::now()),
        }
    }

    fn embed_request(&self, req: &EmbeddingRequest<'_>, model: &str) -> Result<Vec<u8>, ApiError> {
        embeddings::request(req, model)
    }

    fn embed_response(&self, body: &[u8], model: &str) -> Result<Embedded, ApiError> {
        embeddings::response(body, model)
    }

    fn request_options<'a>(&self, model: &'a str) -> RequestOptions<'a> {
        RequestOptions {
            model,
            default_max_tokens: self.default_max_tokens,
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            cache_points: true,
            fields: crate::formats::fields::FieldPolicy::DEFAULT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use std::time::{Duration, UNIX_EPOCH};

    fn keys(token: Option<&str>) -> Bedrock {
        let s = |v: &str| Secret::for_tests(v);
        Bedrock::new(
            "us-east-1",
            &AwsAuth::Keys {
                access_key_id: s("AKIDEXAMPLE"),
                secret_access_key: s("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                session_token: token.map(s),
            },
            4096,
        )
    }

    /// The worked Bedrock example (reference wire-formats §4.1, checked there against
    /// botocore): a model id with `:` percent-encoded in the path and double-encoded in the
    /// canonical request, with and without a session token.
    fn signed(b: &Bedrock) -> RequestHeader {
        let path = b.path(
            "",
            Operation::Chat,
            "anthropic.claude-3-haiku-20240307-v1:0",
            None,
            false,
        );
        assert_eq!(
            path,
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        );
        let mut req = RequestHeader::build("POST", path.as_bytes(), None).unwrap();
        req.insert_header("host", "bedrock-runtime.us-east-1.amazonaws.com")
            .unwrap();
        req.insert_header("content-type", "application/json")
            .unwrap();
        req.insert_header("user-agent", "not signed").unwrap();
        let body = br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":256}}"#;
        // 2024-05-01T12:00:00Z
        let time = UNIX_EPOCH + Duration::from_secs(1_714_564_800);
        let Auth::SigV4(s) = &b.auth else { panic!() };
        s.sign(&mut req, body, time).unwrap();
        req
    }

    #[test]
    fn sigv4_matches_the_reference_signature() {
        let req = signed(&keys(None));
        assert_eq!(req.headers["x-amz-date"], "20240501T120000Z");
        assert_eq!(
            req.headers["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/bedrock/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=553ec5d0a93f78870e92bf4b41e87b3eac6105181bbd1c14d3c72c0a130eeda1"
        );
        assert!(req.headers["authorization"].is_sensitive());
    }

    #[test]
    fn sigv4_signs_the_session_token() {
        let req = signed(&keys(Some("FQoGZXIvYXdzEXAMPLETOKEN")));
        assert_eq!(
            req.headers["x-amz-security-token"],
            "FQoGZXIvYXdzEXAMPLETOKEN"
        );
        let auth = req.headers["authorization"].to_str().unwrap();
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"));
        assert!(auth.ends_with(
            "Signature=f0ae3f4089c73221b99cca72ea36be5d25fb86373ade1cde33d882d1d7f4c3a0"
        ));
    }

    #[test]
    fn paths_and_api_keys() {
        let b = Bedrock::new("us-east-1", &AwsAuth::ApiKey(Secret::for_tests("bk")), 1);
        assert_eq!(
            b.path("/p", Operation::Chat, "arn:aws:bedrock:x/y", None, true),
            "/p/model/arn%3Aaws%3Abedrock%3Ax%2Fy/converse-stream"
        );
        assert_eq!(
            b.path(
                "",
                Operation::Embeddings,
                "amazon.titan-embed-text-v2:0",
                None,
                false
            ),
            "/model/amazon.titan-embed-text-v2%3A0/invoke"
        );
        let mut req = RequestHeader::build("POST", b"/model/m/converse", None).unwrap();
        b.authorize(&mut req, b"{}", None).unwrap();
        assert_eq!(req.headers["authorization"], "Bearer bk");
    }
}
