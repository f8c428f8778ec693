//! The upstream body written by hand: a [`GenerateContentRequest`] as a
//! [`Rope`], keys as literals and strings escaped eight bytes at a time
//! (`jsonout`), a long string shared with the client's body cut in as
//! its slice (`bodyshare`). Byte for byte what serde_json writes for the
//! request's derived `Serialize` (tested below); the rare nested shapes
//! (tools, function calls and responses, code execution, JSON schemas) go
//! through serde_json, as they hold no shared strings.

use super::types::{Content, GenerateContentRequest, GenerationConfig, Part, SafetySetting, ThinkingConfig};
use crate::bodyshare::{Rope, RopeWriter};
use crate::jsonout::{self, Comma, Members, WriteJson};

impl GenerateContentRequest {
    /// The request as the upstream body; `capacity` sizes the buffer for
    /// what is not shared with the client's body.
    pub fn to_rope(&self, capacity: usize) -> Rope {
        let mut rope = RopeWriter::with_capacity(capacity);
        rope.out().extend_from_slice(b"{\"contents\":[");
        let mut comma = Comma::default();
        for content in &self.contents {
            comma.before(rope.out());
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
            out.extend_from_slice(b",\"safetySettings\":");
            jsonout::array(out, &self.safety_settings, |out, setting| setting.write_json(out));
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
    let mut members = Members::open(out);
    members.member(out, b"\"role\":", content.role.as_deref());
    members.key(out, b"\"parts\":[");
    let mut comma = Comma::default();
    for part in &content.parts {
        comma.before(rope.out());
        write_part(rope, part);
    }
    rope.out().push(b']');
    members.close(rope.out());
}

fn write_part(rope: &mut RopeWriter, part: &Part) {
    let mut members = Members::open(rope.out());
    if let Some(text) = &part.text {
        members.key(rope.out(), b"\"text\":");
        rope.body_str(text);
    }
    let out = rope.out();
    members.member(out, b"\"thought\":", part.thought);
    members.member(out, b"\"thoughtSignature\":", part.thought_signature.as_deref());
    if let Some(blob) = &part.inline_data {
        members.key(out, b"\"inlineData\":{\"mimeType\":");
        jsonout::string(out, &blob.mime_type);
        out.extend_from_slice(b",\"data\":");
        rope.body_str(&blob.data);
        rope.out().push(b'}');
    }
    let out = rope.out();
    members.serde(out, b"\"fileData\":", part.file_data.as_ref());
    members.serde(out, b"\"functionCall\":", part.function_call.as_ref());
    members.serde(out, b"\"functionResponse\":", part.function_response.as_ref());
    members.serde(out, b"\"executableCode\":", part.executable_code.as_ref());
    members.serde(out, b"\"codeExecutionResult\":", part.code_execution_result.as_ref());
    members.close(out);
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
        let mut members = Members::open(out);
        members.serde(out, b"\"temperature\":", self.temperature.as_ref());
        members.serde(out, b"\"topP\":", self.top_p.as_ref());
        members.member(out, b"\"topK\":", self.top_k.map(u64::from));
        members.member(out, b"\"maxOutputTokens\":", self.max_output_tokens.map(u64::from));
        members.serde(out, b"\"stopSequences\":", self.stop_sequences.as_ref());
        members.member(out, b"\"candidateCount\":", self.candidate_count.map(u64::from));
        members.member(out, b"\"seed\":", self.seed);
        members.serde(out, b"\"presencePenalty\":", self.presence_penalty.as_ref());
        members.serde(out, b"\"frequencyPenalty\":", self.frequency_penalty.as_ref());
        members.member(out, b"\"responseMimeType\":", self.response_mime_type.as_deref());
        members.serde(out, b"\"responseJsonSchema\":", self.response_json_schema.as_ref());
        if let Some(thinking) = &self.thinking_config {
            members.key(out, b"\"thinkingConfig\":");
            thinking.write_json(out);
        }
        members.close(out);
    }
}

impl WriteJson for ThinkingConfig {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut members = Members::open(out);
        members.member(out, b"\"thinkingBudget\":", self.thinking_budget);
        members.member(out, b"\"thinkingLevel\":", self.thinking_level.as_deref());
        members.member(out, b"\"includeThoughts\":", self.include_thoughts);
        members.close(out);
    }
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
