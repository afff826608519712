//! Embeddings for OpenAI clients: AI Studio's `:batchEmbedContents` and Vertex AI's
//! `:predict`, from and to `openai::embeddings`' neutral request and vectors.
//!
//! AI Studio reports no token count (the caller estimates). Vertex reports one per instance in
//! `statistics.token_count`; their sum is the prompt tokens. Limits stay Google's to enforce:
//! AI Studio takes up to 100 requests per batch, and Vertex's `gemini-embedding-001` takes one
//! instance per call (older text-embedding models take up to 250).

use crate::error::ApiError;
use crate::formats::openai::embeddings::EmbeddingRequest;
use crate::formats::pivot::unreadable_reply;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchRequest<'a> {
    model: &'a str,
    content: TextContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
}

#[derive(Serialize)]
struct TextContent<'a> {
    parts: [TextPart<'a>; 1],
}

#[derive(Serialize)]
struct TextPart<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct Instance<'a> {
    content: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Parameters {
    output_dimensionality: u32,
}

/// The upstream body for `req`: a `batchEmbedContents` request (each request names the model
/// as `models/{model}`), or with `vertex` a `predict` request.
pub fn request(req: &EmbeddingRequest<'_>, model: &str, vertex: bool) -> Result<Vec<u8>, ApiError> {
    let body = if vertex {
        let instances: Vec<Instance<'_>> =
            req.inputs.iter().map(|s| Instance { content: s }).collect();
        let parameters = req.dimensions.map(|d| Parameters {
            output_dimensionality: d,
        });
        serde_json::to_vec(&match parameters {
            Some(p) => serde_json::json!({"instances": instances, "parameters": p}),
            None => serde_json::json!({ "instances": instances }),
        })
    } else {
        let name: Cow<'_, str> = if model.starts_with("models/") {
            Cow::Borrowed(model)
        } else {
            Cow::Owned(format!("models/{model}"))
        };
        let requests: Vec<BatchRequest<'_>> = req
            .inputs
            .iter()
            .map(|s| BatchRequest {
                model: &name,
                content: TextContent {
                    parts: [TextPart { text: s }],
                },
                output_dimensionality: req.dimensions,
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "requests": requests }))
    };
    body.map_err(|_| ApiError::internal())
}

#[derive(Deserialize)]
struct BatchReply {
    embeddings: Vec<Values>,
}

#[derive(Deserialize)]
struct Values {
    values: Vec<f32>,
}

#[derive(Deserialize)]
struct PredictReply {
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    embeddings: VertexEmbedding,
}

#[derive(Deserialize)]
struct VertexEmbedding {
    values: Vec<f32>,
    #[serde(default)]
    statistics: Option<Statistics>,
}

#[derive(Deserialize)]
struct Statistics {
    /// A number; some model versions write it as a float (`6.0`).
    #[serde(default)]
    token_count: Option<f64>,
}

/// The vectors of an upstream reply, in input order, and the prompt tokens when reported.
pub fn response(body: &[u8], vertex: bool) -> Result<(Vec<Vec<f32>>, Option<u64>), ApiError> {
    if !vertex {
        let r: BatchReply = serde_json::from_slice(body).map_err(unreadable_reply)?;
        return Ok((r.embeddings.into_iter().map(|e| e.values).collect(), None));
    }
    let r: PredictReply = serde_json::from_slice(body).map_err(unreadable_reply)?;
    let mut tokens = None;
    let mut vectors = Vec::with_capacity(r.predictions.len());
    for p in r.predictions {
        let n = p.embeddings.statistics.and_then(|s| s.token_count);
        if let Some(n) = n.filter(|n| n.is_finite() && *n >= 0.0) {
            // Saturating float → integer; token counts are far below u64::MAX.
            let n = n.round() as u64;
            tokens = Some(tokens.unwrap_or(0u64).saturating_add(n));
        }
        vectors.push(p.embeddings.values);
    }
    Ok((vectors, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn req(dimensions: Option<u32>) -> EmbeddingRequest<'static> {
        EmbeddingRequest {
            inputs: vec![Cow::Borrowed("a"), Cow::Borrowed("b \"c\"")],
            base64: false,
            dimensions,
            dropped: vec![],
        }
    }

    fn body(b: Vec<u8>) -> Value {
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn ai_studio_batch() {
        let v = body(request(&req(Some(8)), "gemini-embedding-001", false).unwrap());
        assert_eq!(
            v,
            json!({"requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]},
                 "outputDimensionality": 8},
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b \"c\""}]},
                 "outputDimensionality": 8}]})
        );
        let v = body(request(&req(None), "models/m", false).unwrap());
        assert_eq!(v["requests"][0]["model"], "models/m");
        assert!(v["requests"][0].get("outputDimensionality").is_none());
        let (vs, t) = response(
            br#"{"embeddings":[{"values":[0.5,-1]},{"values":[0.25]}]}"#,
            false,
        )
        .unwrap();
        assert_eq!((vs, t), (vec![vec![0.5, -1.0], vec![0.25]], None));
    }

    #[test]
    fn vertex_predict() {
        let v = body(request(&req(Some(4)), "text-embedding-005", true).unwrap());
        assert_eq!(
            v,
            json!({"instances": [{"content": "a"}, {"content": "b \"c\""}],
                "parameters": {"outputDimensionality": 4}})
        );
        assert!(body(request(&req(None), "m", true).unwrap())
            .get("parameters")
            .is_none());
        let reply = br#"{"predictions": [
            {"embeddings": {"statistics": {"truncated": false, "token_count": 6}, "values": [0.1]}},
            {"embeddings": {"statistics": {"truncated": false, "token_count": 2.0}, "values": [0.2]}}],
            "metadata": {"billableCharacterCount": 9}}"#;
        let (vs, t) = response(reply, true).unwrap();
        assert_eq!((vs.len(), t), (2, Some(8)));
        let (_, t) = response(br#"{"predictions":[{"embeddings":{"values":[]}}]}"#, true).unwrap();
        assert_eq!(t, None);
    }

    #[test]
    fn unreadable_replies_are_502() {
        for (b, vertex) in [(&b"{}"[..], false), (b"{}", true), (b"[", true)] {
            assert_eq!(response(b, vertex).unwrap_err().status, 502);
        }
    }
}
