//! `POST /v1/embeddings` (pure): OpenAI's request becomes Gemini
//! `batchEmbedContents` bodies of at most [`MAX_BATCH`] texts, and Gemini's
//! vectors become OpenAI's list, as floats or as base64 of little-endian
//! `f32`s (`encoding_format: "base64"`, what the OpenAI SDKs ask for by
//! default).

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

/// Texts per upstream `batchEmbedContents` call (Google's limit).
pub const MAX_BATCH: usize = 100;
/// Texts per client request (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;
/// What OpenAI's own embedding model names are served by.
pub const DEFAULT_EMBEDDING_MODEL: &str = "gemini-embedding-001";

#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: Value,
    #[serde(default)]
    pub dimensions: Option<u32>,
    #[serde(default)]
    pub encoding_format: Option<String>,
}

/// A request checked and reduced to what Gemini needs.
#[derive(Debug, PartialEq)]
pub struct EmbeddingJob {
    /// The upstream model (no `models/`).
    pub model: String,
    pub texts: Vec<String>,
    pub dimensions: Option<u32>,
    pub base64: bool,
}

/// The model an OpenAI client's name stands for: OpenAI's own embedding
/// models (`text-embedding-3-small`, `-3-large`, `-ada-002`), which clients
/// often cannot change, are served by Gemini's default embedding model.
pub fn upstream_embedding_model(requested: &str) -> String {
    let name = requested.strip_prefix("models/").unwrap_or(requested);
    if name.starts_with("text-embedding-3-") || name == "text-embedding-ada-002" {
        DEFAULT_EMBEDDING_MODEL.to_owned()
    } else {
        name.to_owned()
    }
}

/// Checks a request; errors are `(message, param)` for a 400.
pub fn to_job(request: EmbeddingRequest) -> Result<EmbeddingJob, (String, &'static str)> {
    let texts = match request.input {
        Value::String(text) => vec![text],
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.into_iter().map(|item| item.as_str().unwrap_or_default().to_owned()).collect()
        }
        Value::Array(_) => {
            return Err((
                "input: token arrays are not supported by Gemini; send text (a string or a list of strings)".into(),
                "input",
            ))
        }
        _ => return Err(("input: expected a string or a list of strings".into(), "input")),
    };
    if texts.is_empty() {
        return Err(("input: must not be empty".into(), "input"));
    }
    if texts.len() > MAX_INPUTS {
        return Err((format!("input: at most {MAX_INPUTS} texts per request"), "input"));
    }
    if let Some(index) = texts.iter().position(|text| text.is_empty()) {
        return Err((format!("input[{index}]: must not be an empty string"), "input"));
    }
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err((format!("encoding_format: expected float or base64, got {other:?}"), "encoding_format"))
        }
    };
    if request.dimensions == Some(0) {
        return Err(("dimensions: must be positive".into(), "dimensions"));
    }
    Ok(EmbeddingJob { model: upstream_embedding_model(&request.model), texts, dimensions: request.dimensions, base64 })
}

/// The `batchEmbedContents` body for `texts`.
pub fn batch_body(model: &str, texts: &[String], dimensions: Option<u32>) -> Value {
    let requests: Vec<Value> = texts
        .iter()
        .map(|text| {
            let mut request = json!({"model": format!("models/{model}"), "content": {"parts": [{"text": text}]}});
            if let Some(dimensions) = dimensions {
                request["outputDimensionality"] = json!(dimensions);
            }
            request
        })
        .collect();
    json!({"requests": requests})
}

/// The vectors of a `batchEmbedContents` answer, checked to be `expected`
/// many.
pub fn vectors_of(answer: &[u8], expected: usize) -> Result<Vec<Vec<f32>>, String> {
    #[derive(Deserialize)]
    struct Batch {
        #[serde(default)]
        embeddings: Vec<Embedding>,
    }
    #[derive(Deserialize)]
    struct Embedding {
        #[serde(default)]
        values: Vec<f32>,
    }
    let batch: Batch = serde_json::from_slice(answer).map_err(|error| format!("unreadable embeddings: {error}"))?;
    if batch.embeddings.len() != expected {
        return Err(format!("Gemini returned {} embeddings for {expected} texts", batch.embeddings.len()));
    }
    Ok(batch.embeddings.into_iter().map(|embedding| embedding.values).collect())
}

/// OpenAI's answer. Gemini reports no token counts for embeddings, so
/// usage is zero.
pub fn to_openai(requested_model: &str, vectors: &[Vec<f32>], base64: bool) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|value| value.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({"object": "list", "data": data, "model": requested_model, "usage": {"prompt_tokens": 0, "total_tokens": 0}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> EmbeddingRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn inputs_and_options_are_checked() {
        let job = to_job(request(json!({"model": "text-embedding-3-small", "input": "hi", "dimensions": 8}))).unwrap();
        assert_eq!(
            job,
            EmbeddingJob {
                model: DEFAULT_EMBEDDING_MODEL.into(),
                texts: vec!["hi".into()],
                dimensions: Some(8),
                base64: false
            }
        );
        let job = to_job(request(
            json!({"model": "models/text-embedding-004", "input": ["a", "b"], "encoding_format": "base64"}),
        ))
        .unwrap();
        assert_eq!((job.model.as_str(), job.texts.len(), job.base64), ("text-embedding-004", 2, true));
        for (body, param) in [
            (json!({"model": "m", "input": [1, 2]}), "input"),
            (json!({"model": "m", "input": []}), "input"),
            (json!({"model": "m", "input": ["a", ""]}), "input"),
            (json!({"model": "m", "input": 3}), "input"),
            (json!({"model": "m", "input": "a", "encoding_format": "hex"}), "encoding_format"),
            (json!({"model": "m", "input": "a", "dimensions": 0}), "dimensions"),
        ] {
            assert_eq!(to_job(request(body.clone())).unwrap_err().1, param, "{body}");
        }
    }

    #[test]
    fn batches_and_answers_in_both_encodings() {
        let body = batch_body("gemini-embedding-001", &["a".into()], Some(3));
        assert_eq!(
            body,
            json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3}]})
        );
        let answer = br#"{"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25]}]}"#;
        let vectors = vectors_of(answer, 2).unwrap();
        assert!(vectors_of(answer, 3).is_err());
        let floats = to_openai("m", &vectors, false);
        assert_eq!(floats["data"][0]["embedding"], json!([0.5, -1.0]));
        assert_eq!(floats["data"][1]["index"], 1);
        let encoded = to_openai("m", &vectors, true);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(decoded, vec![0.5, -1.0]);
    }
}
