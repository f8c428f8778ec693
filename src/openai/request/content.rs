//! Message content as Gemini parts (rule 2): text, images (data URLs,
//! fetched remote images, Gemini file references), audio and files.

use super::*;
use crate::bodyshare::{member, BodyJson, BodyStr};
use crate::convert::media::{
    decode_data_url, file_data_part, gemini_file_reference, guess_mime_type_from_file_name, inline_data_part,
    validated_base64,
};

/// Rule 2: a message's content (a string, null, or an array of parts) as
/// Gemini parts. Empty texts are skipped. Null is accepted only when
/// `null_content_allowed` (an assistant message with tool calls).
pub(super) fn convert_message_content(
    content: Option<&BodyJson>,
    message_location: At<'_>,
    opts: &ConvertOptions,
    null_content_allowed: bool,
) -> Result<Vec<Part>, ConvertError> {
    let content_location = message_location.field("content");
    match content {
        None | Some(BodyJson::Null) if null_content_allowed => Ok(Vec::new()),
        None | Some(BodyJson::Null) => Err(bad_request_with_param(
            message_location,
            content_location,
            "content is missing (only an assistant message with tool_calls may omit it)",
        )),
        Some(BodyJson::String(text)) if text.is_empty() => Ok(Vec::new()),
        Some(BodyJson::String(text)) => Ok(vec![Part::text(text.clone())]),
        Some(BodyJson::Array(content_parts)) => {
            let mut parts = Vec::with_capacity(content_parts.len());
            for (part_index, content_part) in content_parts.iter().enumerate() {
                if let Some(part) = convert_content_part(content_part, content_location.index(part_index), opts)? {
                    parts.push(part);
                }
            }
            Ok(parts)
        }
        Some(_) => Err(bad_request_with_param(
            message_location,
            content_location,
            "content must be a string, an array of content parts, or null",
        )),
    }
}

/// One OpenAI content part as a Gemini part; `None` for an empty text.
pub(super) fn convert_content_part(
    content_part: &BodyJson,
    part_location: At<'_>,
    opts: &ConvertOptions,
) -> Result<Option<Part>, ConvertError> {
    let Some(content_part_object) = content_part.as_object() else {
        return Err(bad_request_at(part_location, "a content part must be an object with a \"type\""));
    };
    let Some(part_type) = member(content_part_object, "type").and_then(BodyJson::as_str) else {
        return Err(bad_request_at(part_location, "content part has no \"type\""));
    };
    match part_type {
        "text" => match member(content_part_object, "text") {
            Some(BodyJson::String(text)) if text.is_empty() => Ok(None),
            Some(BodyJson::String(text)) => Ok(Some(Part::text(text.clone()))),
            _ => Err(bad_request_at(part_location, "a text part needs a string \"text\"")),
        },
        "image_url" => {
            let url = match member(content_part_object, "image_url") {
                Some(BodyJson::String(url)) => Some(url),
                Some(BodyJson::Object(image_url)) => member(image_url, "url").and_then(BodyJson::as_body_str),
                _ => None,
            };
            let Some(url) = url else {
                return Err(bad_request_at(part_location, "an image_url part needs a string \"image_url.url\""));
            };
            convert_image_url(url, part_location, opts).map(Some)
        }
        "input_audio" => convert_input_audio(content_part_object, part_location).map(Some),
        "file" => convert_file_part(content_part_object, part_location).map(Some),
        other => Err(bad_request_at(part_location, format!("unknown content part type {other:?}"))),
    }
}

pub(super) fn convert_image_url(
    url: &BodyStr,
    part_location: At<'_>,
    opts: &ConvertOptions,
) -> Result<Part, ConvertError> {
    if has_prefix_ignoring_ascii_case(url, "data:") {
        let (mime_type, base64_data) = decode_data_url(url).map_err(|detail| bad_request_at(part_location, detail))?;
        return Ok(inline_data_part(mime_type, base64_data));
    }
    if let Some(file_data) = gemini_file_reference(url) {
        return Ok(file_data_part(file_data));
    }
    if is_http_url(url) {
        return match opts.remote_media.get(url.as_str()) {
            Some(blob) => Ok(Part { inline_data: Some(blob.clone()), ..Part::default() }),
            None => Err(bad_request_at(
                part_location,
                format!("could not fetch image {}", crate::media::url_for_messages(url)),
            )),
        };
    }
    Err(bad_request_at(part_location, "unsupported image URL; use a data:, http(s):// or gs:// URL"))
}

pub(super) fn convert_input_audio(
    content_part_object: &[(String, BodyJson)],
    part_location: At<'_>,
) -> Result<Part, ConvertError> {
    let input_audio = member(content_part_object, "input_audio");
    let data = input_audio.and_then(|audio| audio.get("data")).and_then(BodyJson::as_body_str);
    let Some(data) = data else {
        return Err(bad_request_at(part_location, "an input_audio part needs a string \"input_audio.data\""));
    };
    if has_prefix_ignoring_ascii_case(data, "data:") {
        let (mime_type, base64_data) = decode_data_url(data).map_err(|detail| bad_request_at(part_location, detail))?;
        return Ok(inline_data_part(mime_type, base64_data));
    }
    let format = input_audio
        .and_then(|audio| audio.get("format"))
        .and_then(BodyJson::as_str)
        .filter(|format| !format.is_empty() && format.chars().all(|character| character.is_ascii_alphanumeric()));
    let Some(format) = format else {
        return Err(bad_request_at(
            part_location,
            "an input_audio part needs an \"input_audio.format\" such as \"wav\" or \"mp3\"",
        ));
    };
    let base64_data = validated_base64(data.clone())
        .ok_or_else(|| bad_request_at(part_location, "input_audio.data is not valid base64"))?;
    Ok(inline_data_part(format!("audio/{}", format.to_ascii_lowercase()), base64_data))
}

/// `{"type":"file","file":{"file_data","filename","file_id"}}` → inline data
/// (MIME from the data URL, else guessed from the file name), or a file
/// reference when only a Gemini file id / URI is given.
pub(super) fn convert_file_part(
    content_part_object: &[(String, BodyJson)],
    part_location: At<'_>,
) -> Result<Part, ConvertError> {
    let file = member(content_part_object, "file");
    let field = |name: &str| file.and_then(|file| file.get(name)).and_then(BodyJson::as_body_str);
    let file_name = field("filename").map(BodyStr::as_str);
    if let Some(file_data) = field("file_data") {
        if has_prefix_ignoring_ascii_case(file_data, "data:") {
            let (mime_type, base64_data) =
                decode_data_url(file_data).map_err(|detail| bad_request_at(part_location, detail))?;
            return Ok(inline_data_part(mime_type, base64_data));
        }
        let base64_data = validated_base64(file_data.clone())
            .ok_or_else(|| bad_request_at(part_location, "file.file_data is not valid base64"))?;
        let mime_type = file_name.and_then(guess_mime_type_from_file_name).unwrap_or("application/octet-stream");
        return Ok(inline_data_part(mime_type.to_string(), base64_data));
    }
    if let Some(file_id) = field("file_id") {
        let file_uri = match file_id.strip_prefix("files/") {
            Some(gemini_file_name) => {
                format!("https://{GEMINI_FILES_API_HOST}/v1beta/files/{gemini_file_name}")
            }
            None => file_id.to_string(),
        };
        return match gemini_file_reference(&file_uri) {
            Some(mut file_data) => {
                if let Some(mime_type) = file_name.and_then(guess_mime_type_from_file_name) {
                    file_data.mime_type = Some(mime_type.to_string());
                }
                Ok(file_data_part(file_data))
            }
            None => Err(bad_request_at(
                part_location,
                "file.file_id must be a Gemini file (files/…, gs://…); send other files inline as file.file_data",
            )),
        };
    }
    Err(bad_request_at(part_location, "a file part needs \"file.file_data\" or \"file.file_id\""))
}
