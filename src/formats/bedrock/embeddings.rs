//! OpenAI embeddings → Bedrock `InvokeModel` for embedding models, by model family: Amazon
//! Titan (`amazon.titan-embed-*`: one text per request, a token count in the reply) and Cohere
//! (`cohere.embed-*`: a batch of texts, no token count).

use crate::error::ApiError;
use crate::formats::fields::unsupported;
use crate::formats::openai::embeddings::EmbeddingRequest;
use serde::Deserialize;
use serde_json::json;

enum Family {
    Titan,
    Cohere,
}

fn family(model: &str) -> Result<Family, ApiError> {
    // Inference profiles prefix a region (`us.cohere.embed-…`).
    let base = model.rsplit('/').next().unwrap_or(model);
    if base.contains("amazon.titan-embed") {
        Ok(Family::Titan)
    } else if base.contains("cohere.embed") {
        Ok(Family::Cohere)
    } else {
        Err(unsupported(
            "model".into(),
            "is not an embedding model Tollgate can address on Bedrock (amazon.titan-embed-* or cohere.embed-*).",
        ))
    }
}

/// The InvokeModel body for `req` on `model`.
pub fn request(req: &EmbeddingRequest<'_>, model: &str) -> Result<Vec<u8>, ApiError> {
    let body = match family(model)? {
        Family::Titan => {
            let [text] = req.inputs.as_slice() else {
                return Err(unsupported(
                    "input".into(),
                    "must be a single string: Titan embedding models take one text per request.",
                ));
            };
            let mut b = json!({"inputText": text});
            if let Some(d) = req.dimensions {
                b["dimensions"] = json!(d);
            }
            b
        }
        Family::Cohere => {
            if req.dimensions.is_some() {
                return Err(unsupported(
                    "dimensions".into(),
                    "cannot be set for Cohere embedding models on Bedrock.",
                ));
            }
            json!({"texts": req.inputs, "input_type": "search_document"})
        }
    };
    serde_json::to_vec(&body).map_err(|_| ApiError::internal())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanReply {
    embedding: Vec<f32>,
    input_text_token_count: Option<u64>,
}

#[derive(Deserialize)]
struct CohereReply {
    embeddings: Vec<Vec<f32>>,
}

/// The vectors of an InvokeModel reply, and Titan's token count.
pub fn response(body: &[u8], model: &str) -> Result<(Vec<Vec<f32>>, Option<u64>), ApiError> {
    let bad = |e: serde_json::Error| {
        ApiError::bad_upstream(format!(
            "The upstream embeddings reply could not be read: {e}"
        ))
    };
    match family(model)? {
        Family::Titan => {
            let r: TitanReply = serde_json::from_slice(body).map_err(bad)?;
            Ok((vec![r.embedding], r.input_text_token_count))
        }
        Family::Cohere => {
            let r: CohereReply = serde_json::from_slice(body).map_err(bad)?;
            Ok((r.embeddings, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::openai::embeddings::parse;
    use serde_json::Value;

    #[test]
    fn titan_and_cohere_bodies() {
        let one = parse(
            br#"{"input":"hello","dimensions":256}"#,
            crate::formats::fields::FieldPolicy::DEFAULT,
        )
        .unwrap();
        let b: Value =
            serde_json::from_slice(&request(&one, "amazon.titan-embed-text-v2:0").unwrap())
                .unwrap();
        assert_eq!(b, json!({"inputText": "hello", "dimensions": 256}));
        let many = parse(
            br#"{"input":["a","b"]}"#,
            crate::formats::fields::FieldPolicy::DEFAULT,
        )
        .unwrap();
        let e = request(&many, "amazon.titan-embed-text-v2:0").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        let b: Value =
            serde_json::from_slice(&request(&many, "cohere.embed-english-v3").unwrap()).unwrap();
        assert_eq!(b["texts"], json!(["a", "b"]));
        let e = request(&many, "anthropic.claude-3-haiku").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
    }

    #[test]
    fn replies() {
        let (v, n) = response(
            br#"{"embedding":[0.5,-1.0],"inputTextTokenCount":3}"#,
            "amazon.titan-embed-text-v2:0",
        )
        .unwrap();
        assert_eq!((v, n), (vec![vec![0.5, -1.0]], Some(3)));
        let (v, n) = response(
            br#"{"embeddings":[[1.0],[2.0]],"id":"x","texts":["a","b"]}"#,
            "us.cohere.embed-english-v3",
        )
        .unwrap();
        assert_eq!((v.len(), n), (2, None));
        assert_eq!(
            response(b"{}", "cohere.embed-english-v3")
                .unwrap_err()
                .status,
            502
        );
    }
}
