//! The upstream body written by hand: a [`GenerateContentRequest`] as a
//! [`Rope`], keys as literals and strings escaped eight bytes at a time
//! (`jsonout`), a long string shared with the client's body cut in as
//! its slice (`bodyshare`). Byte for byte what serde_json writes for the
//! request's derived `Serialize` (tested below); the rare nested shapes
//! (tools, function calls and responses, code execution, JSON schemas) go
//! through serde_json, as they hold no shared strings.

use super::types::{Content, GenerateContentRequest, GenerationConfig, Part, SafetySetting, ThinkingConfig};
use crate::bodyshare::{Rope, RopeWriter};
use crate::jsonout::{self, WriteJson};

impl GenerateContentRequest {
    /// The request as the upstream body; `capacity` sizes the buffer for
    /// what is not shared with the client's body.
    pub fn to_rope(&self, capacity: usize) -> Rope {
        let mut rope = RopeWriter::with_capacity(capacity);
        rope.out().extend_from_slice(b"{\"contents\":[");
        for (at, content) in self.contents.iter().enumerate() {
            if at > 0 {
                rope.out().push(b',');
            }
            write_content(&mut rope, content);
        }
        rope.out().push(b']');
        if let Some(system) = &self.system_instruction {
            rope.out().extend_from_slice(b",\"systemInstruction\":");
            write_content(&mut rope, system);
        }
        let out = rope.out();
        if !self.tools.is_empty() {
            out.extend_from_slice(b",\"tools\":");
            jsonout::serde(out, &self.tools);
        }
        if let Some(tool_config) = &self.tool_config {
            out.extend_from_slice(b",\"toolConfig\":");
            jsonout::serde(out, tool_config);
        }
        if !self.safety_settings.is_empty() {
            out.extend_from_slice(b",\"safetySettings\":[");
            for (at, setting) in self.safety_settings.iter().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                setting.write_json(out);
            }
            out.push(b']');
        }
        if let Some(config) = &self.generation_config {
            out.extend_from_slice(b",\"generationConfig\":");
            config.write_json(out);
        }
        out.push(b'}');
        rope.finish()
    }
}

fn write_content(rope: &mut RopeWriter, content: &Content) {
    let out = rope.out();
    out.push(b'{');
    if let Some(role) = &content.role {
        out.extend_from_slice(b"\"role\":");
        jsonout::string(out, role);
        out.push(b',');
    }
    out.extend_from_slice(b"\"parts\":[");
    for (at, part) in content.parts.iter().enumerate() {
        if at > 0 {
            rope.out().push(b',');
        }
        write_part(rope, part);
    }
    rope.out().extend_from_slice(b"]}");
}

fn write_part(rope: &mut RopeWriter, part: &Part) {
    let mut fields = Fields::open(rope.out());
    if let Some(text) = &part.text {
        fields.key(rope.out(), b"\"text\":");
        rope.body_str(text);
    }
    let out = rope.out();
    if let Some(thought) = part.thought {
        fields.key(out, b"\"thought\":");
        out.extend_from_slice(if thought { b"true" } else { b"false" });
    }
    if let Some(signature) = &part.thought_signature {
        fields.key(out, b"\"thoughtSignature\":");
        jsonout::string(out, signature);
    }
    if let Some(blob) = &part.inline_data {
        fields.key(out, b"\"inlineData\":{\"mimeType\":");
        jsonout::string(out, &blob.mime_type);
        out.extend_from_slice(b",\"data\":");
        rope.body_str(&blob.data);
        rope.out().push(b'}');
    }
    let out = rope.out();
    if let Some(file) = &part.file_data {
        fields.key(out, b"\"fileData\":");
        jsonout::serde(out, file);
    }
    if let Some(call) = &part.function_call {
        fields.key(out, b"\"functionCall\":");
        jsonout::serde(out, call);
    }
    if let Some(response) = &part.function_response {
        fields.key(out, b"\"functionResponse\":");
        jsonout::serde(out, response);
    }
    if let Some(code) = &part.executable_code {
        fields.key(out, b"\"executableCode\":");
        jsonout::serde(out, code);
    }
    if let Some(result) = &part.code_execution_result {
        fields.key(out, b"\"codeExecutionResult\":");
        jsonout::serde(out, result);
    }
    out.push(b'}');
}

impl WriteJson for SafetySetting {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"category\":");
        jsonout::string(out, &self.category);
        out.extend_from_slice(b",\"threshold\":");
        jsonout::string(out, &self.threshold);
        out.push(b'}');
    }
}

impl WriteJson for GenerationConfig {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut fields = Fields::open(out);
        fields.float(out, b"\"temperature\":", self.temperature);
        fields.float(out, b"\"topP\":", self.top_p);
        fields.uint(out, b"\"topK\":", self.top_k);
        fields.uint(out, b"\"maxOutputTokens\":", self.max_output_tokens);
        if let Some(stops) = &self.stop_sequences {
            fields.key(out, b"\"stopSequences\":");
            jsonout::serde(out, stops);
        }
        fields.uint(out, b"\"candidateCount\":", self.candidate_count);
        if let Some(seed) = self.seed {
            fields.key(out, b"\"seed\":");
            jsonout::int(out, seed);
        }
        fields.float(out, b"\"presencePenalty\":", self.presence_penalty);
        fields.float(out, b"\"frequencyPenalty\":", self.frequency_penalty);
        if let Some(mime_type) = &self.response_mime_type {
            fields.key(out, b"\"responseMimeType\":");
            jsonout::string(out, mime_type);
        }
        if let Some(schema) = &self.response_json_schema {
            fields.key(out, b"\"responseJsonSchema\":");
            jsonout::serde(out, schema);
        }
        if let Some(thinking) = &self.thinking_config {
            fields.key(out, b"\"thinkingConfig\":");
            thinking.write_json(out);
        }
        out.push(b'}');
    }
}

impl WriteJson for ThinkingConfig {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut fields = Fields::open(out);
        if let Some(budget) = self.thinking_budget {
            fields.key(out, b"\"thinkingBudget\":");
            jsonout::int(out, budget);
        }
        if let Some(level) = &self.thinking_level {
            fields.key(out, b"\"thinkingLevel\":");
            jsonout::string(out, level);
        }
        if let Some(include) = self.include_thoughts {
            fields.key(out, b"\"includeThoughts\":");
            out.extend_from_slice(if include { b"true" } else { b"false" });
        }
        out.push(b'}');
    }
}

/// The members of an object whose fields are all optional: the comma
/// before each but the first.
struct Fields {
    first: bool,
}

impl Fields {
    /// Writes the `{`.
    fn open(out: &mut Vec<u8>) -> Fields {
        out.push(b'{');
        Fields { first: true }
    }

    /// `key` is the quoted key and its colon.
    fn key(&mut self, out: &mut Vec<u8>, key: &[u8]) {
        if !std::mem::replace(&mut self.first, false) {
            out.push(b',');
        }
        out.extend_from_slice(key);
    }

    fn uint(&mut self, out: &mut Vec<u8>, key: &[u8], value: Option<u32>) {
        if let Some(value) = value {
            self.key(out, key);
            jsonout::uint(out, u64::from(value));
        }
    }

    /// Floats as serde_json writes them (shortest round trip; `null` for
    /// what JSON cannot hold).
    fn float(&mut self, out: &mut Vec<u8>, key: &[u8], value: Option<f64>) {
        if let Some(value) = value {
            self.key(out, key);
            jsonout::serde(out, &value);
        }
    }
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
