//! `response_format` as Gemini's response MIME type and schema (what it
//! means is door-neutral: `convert::schema::apply_json_output`).

use super::*;
use crate::convert::schema::apply_json_output;

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
        Some("json_object") => apply_json_output(generation_config, None),
        Some("json_schema") => apply_json_output(
            generation_config,
            response_format.get("json_schema").and_then(|json_schema| json_schema.get("schema")),
        ),
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
