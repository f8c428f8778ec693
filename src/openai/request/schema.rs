//! `response_format` as Gemini's response MIME type and schema (the
//! schema cleaning itself is door-neutral: `convert::schema`).

use super::*;
use crate::convert::schema::remove_unsupported_json_schema_keywords;

pub(super) fn apply_response_format(
    response_format: Option<&Value>,
    generation_config: &mut GenerationConfig,
) -> Result<(), ConvertError> {
    let Some(response_format) = response_format.filter(|format| !format.is_null()) else {
        return Ok(());
    };
    let format_type = response_format.get("type").and_then(Value::as_str);
    match format_type {
        Some("text") => {}
        Some("json_object") => {
            generation_config.response_mime_type = Some("application/json".to_string());
        }
        Some("json_schema") => {
            generation_config.response_mime_type = Some("application/json".to_string());
            generation_config.response_json_schema = response_format
                .get("json_schema")
                .and_then(|json_schema| json_schema.get("schema"))
                .map(remove_unsupported_json_schema_keywords);
        }
        _ => {
            return Err(bad_request_with_param(
                "response_format",
                "response_format.type",
                "type must be \"text\", \"json_object\" or \"json_schema\"",
            ))
        }
    }
    Ok(())
}
