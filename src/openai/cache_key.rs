//! The swipe-cache key of an OpenAI chat request (see `cache`: the
//! canonical digest and what a key means).

use crate::cache::{tag, CacheKey, KeyDigest};
use crate::openai::types::{ChatRequest, Message};

/// Computes the swipe-cache key of `request` for the client `scope` (see
/// `auth::ClientScope`: how the client authenticated and its address), so
/// an answer is only ever served to the client whose request made it.
/// Covered: the scope, `model` (as the client named it), every generation
/// parameter, `response_format`, `tools`, `tool_choice`, the reasoning
/// settings, `n` (an answer with one choice must not serve a request for
/// three) and *every* message — system instruction and whole history
/// included — with its role, full content (data URLs in full), name, tool
/// calls and tool call id. Not covered: `stream` and `stream_options`,
/// since a swipe may change the delivery mode.
///
/// (The original keyed only the last `CALCULATE_CACHE_ENTRIES` messages, so
/// a client repeating another's recent turns under a different system
/// prompt received the other's answer. Those settings are still accepted,
/// but no longer narrow the key: a swipe resends the identical history.)
pub fn cache_key(request: &ChatRequest, scope: &[u8]) -> CacheKey {
    let mut digest = KeyDigest::new();

    digest.write_field("scope");
    digest.write_length(scope.len());
    digest.write_bytes(scope);
    digest.write_field("model");
    digest.write_text(&request.model);

    digest.write_field("n");
    digest.write_optional(request.n, |digest, value| digest.write_u64(u64::from(value)));
    digest.write_field("temperature");
    digest.write_optional(request.temperature, |digest, value| digest.write_float(value));
    digest.write_field("top_p");
    digest.write_optional(request.top_p, |digest, value| digest.write_float(value));
    digest.write_field("top_k");
    digest.write_optional(request.top_k, |digest, value| digest.write_u64(u64::from(value)));
    digest.write_field("max_tokens");
    digest.write_optional(request.max_tokens, |digest, value| digest.write_u64(u64::from(value)));
    digest.write_field("max_completion_tokens");
    digest.write_optional(request.max_completion_tokens, |digest, value| digest.write_u64(u64::from(value)));
    digest.write_field("stop");
    digest.write_optional(request.stop.as_ref(), KeyDigest::write_json);
    digest.write_field("seed");
    digest.write_optional(request.seed, |digest, value| digest.write_bytes(&value.to_le_bytes()));
    digest.write_field("presence_penalty");
    digest.write_optional(request.presence_penalty, |digest, value| digest.write_float(value));
    digest.write_field("frequency_penalty");
    digest.write_optional(request.frequency_penalty, |digest, value| digest.write_float(value));
    digest.write_field("response_format");
    digest.write_optional(request.response_format.as_ref(), KeyDigest::write_json);
    digest.write_field("tools");
    digest.write_optional(request.tools.as_deref(), KeyDigest::write_json_list);
    digest.write_field("tool_choice");
    digest.write_optional(request.tool_choice.as_ref(), KeyDigest::write_json);
    digest.write_field("reasoning_effort");
    digest.write_optional(request.reasoning_effort.as_deref(), KeyDigest::write_text);
    digest.write_field("thinking_budget");
    digest.write_optional(request.thinking_budget, |digest, value| digest.write_bytes(&value.to_le_bytes()));
    digest.write_field("enable_thinking");
    digest.write_optional(request.enable_thinking, |digest, value| digest.write_tag(u8::from(value)));

    digest.write_field("messages");
    digest.write_length(request.messages.len());
    for message in &request.messages {
        write_message(&mut digest, message);
    }

    digest.finish()
}

fn write_message(digest: &mut KeyDigest, message: &Message) {
    digest.write_tag(tag::MESSAGE);
    digest.write_field("role");
    digest.write_text(&message.role);
    digest.write_field("content");
    digest.write_optional(message.content.as_ref(), KeyDigest::write_json);
    digest.write_field("name");
    digest.write_optional(message.name.as_deref(), KeyDigest::write_text);
    digest.write_field("tool_calls");
    digest.write_optional(message.tool_calls.as_deref(), KeyDigest::write_json_list);
    digest.write_field("tool_call_id");
    digest.write_optional(message.tool_call_id.as_deref(), KeyDigest::write_text);
}
