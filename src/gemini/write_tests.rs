use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::bodyshare::{parse_shared, SHARED_FROM_BYTES};

/// Requests with every field, in many combinations, as Gemini-native
/// bodies (the wire types read them).
fn requests() -> Vec<serde_json::Value> {
    let text_parts = json!([
        {"text": "Hello \"there\"\n你好 \u{1}"},
        {"text": "thinking", "thought": true, "thoughtSignature": "c2ln"},
        {"text": "", "thought": false},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": "gs://bucket/file.pdf"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x/y"}},
        {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "s"},
        {"functionCall": {"name": "no_args"}},
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21.5, "list": [1, "a", null]}}},
        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}},
        {}
    ]);
    let full = json!({
        "contents": [
            {"role": "user", "parts": text_parts},
            {"role": "model", "parts": [{"text": "ok"}]},
            {"parts": []}
        ],
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "tools": [
            {"functionDeclarations": [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}, {"name": "bare"}]},
            {"googleSearch": {}}
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "safetySettings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"},
            {"category": "HARM_CATEGORY_CIVIC_INTEGRITY", "threshold": "BLOCK_NONE"}
        ],
        "generationConfig": {
            "temperature": 0.7, "topP": 0.95, "topK": 40, "maxOutputTokens": 8192,
            "stopSequences": ["\n\nUser:", "END"], "candidateCount": 2, "seed": -42,
            "presencePenalty": 1e-7, "frequencyPenalty": 2.0, "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
            "thinkingConfig": {"thinkingBudget": -1, "thinkingLevel": "high", "includeThoughts": true}
        }
    });
    let mut requests = vec![
        json!({"contents": []}),
        json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}),
        json!({"contents": [], "generationConfig": {}}),
        json!({"contents": [], "generationConfig": {"thinkingConfig": {}}}),
        json!({"contents": [], "generationConfig": {"seed": 0, "temperature": 1.0, "topK": 0}}),
        json!({"contents": [], "generationConfig": {"thinkingConfig": {"includeThoughts": false}}}),
        json!({"contents": [], "generationConfig": {"thinkingConfig": {"thinkingLevel": "low", "includeThoughts": true}}}),
        full.clone(),
    ];
    // The full request with each top-level field left out in turn.
    for field in ["systemInstruction", "tools", "toolConfig", "safetySettings", "generationConfig"] {
        let mut without = full.clone();
        without.as_object_mut().unwrap().remove(field);
        requests.push(without);
    }
    // Each generation setting alone.
    for (field, value) in full["generationConfig"].as_object().unwrap() {
        requests.push(json!({"contents": [], "generationConfig": {field.clone(): value.clone()}}));
    }
    requests
}

#[test]
fn the_rope_is_what_serde_json_writes() {
    for body in requests() {
        let request: GenerateContentRequest = serde_json::from_value(body.clone()).unwrap();
        let rope = request.to_rope(64);
        assert_eq!(
            String::from_utf8(rope.flat().to_vec()).unwrap(),
            serde_json::to_string(&request).unwrap(),
            "{body}"
        );
        assert_eq!(rope.pieces().len(), 1, "nothing shared: one piece");
    }
}

#[test]
fn long_strings_of_the_clients_body_are_cut_in_as_slices() {
    let long_text: String = "long text ".repeat(SHARED_FROM_BYTES / 10 + 1);
    let long_data: String = "QUJD".repeat(SHARED_FROM_BYTES / 4 + 1);
    let body = json!({"contents": [{"role": "user", "parts": [
        {"text": long_text},
        {"text": "short"},
        {"inlineData": {"mimeType": "image/png", "data": long_data}},
        {"text": format!("escaped\n{long_text}")}
    ]}]});
    let bytes = Bytes::from(serde_json::to_vec(&body).unwrap());
    let request: GenerateContentRequest = parse_shared(&bytes).unwrap();
    let rope = request.to_rope(64);
    assert_eq!(rope.flat(), serde_json::to_vec(&request).unwrap());
    let shared: Vec<&Bytes> =
        rope.pieces().iter().filter(|piece| bytes.as_ptr_range().contains(&piece.as_ptr())).collect();
    assert_eq!(shared.len(), 2, "the long text and the image data, not the escaped text");
    assert_eq!(shared[0].as_ref(), long_text.as_bytes());
    assert_eq!(shared[1].as_ref(), long_data.as_bytes());
}
