//! Content as Gemini parts, for every front door: inline data, file
//! references (`gs://`, Gemini Files API URLs), data URLs and base64
//! checks, MIME types guessed from file names.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};

use crate::gemini::types::{Blob, FileData, Part};

pub const GEMINI_FILES_API_HOST: &str = "generativelanguage.googleapis.com";

/// Whether `text` starts with `prefix`, ASCII case aside.
pub fn has_prefix_ignoring_ascii_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len()).is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// An http(s) URL (fetched by the caller before conversion).
pub fn is_http_url(url: &str) -> bool {
    has_prefix_ignoring_ascii_case(url, "http://") || has_prefix_ignoring_ascii_case(url, "https://")
}

pub fn inline_data_part(mime_type: String, base64_data: String) -> Part {
    Part { inline_data: Some(Blob { mime_type, data: base64_data }), ..Part::default() }
}

pub fn file_data_part(file_data: FileData) -> Part {
    Part { file_data: Some(file_data), ..Part::default() }
}

/// A `gs://` URL or a Gemini Files API URL, passed to Gemini by reference.
pub fn gemini_file_reference(url: &str) -> Option<FileData> {
    let is_reference = if has_prefix_ignoring_ascii_case(url, "gs://") {
        true
    } else {
        url::Url::parse(url).is_ok_and(|parsed_url| {
            parsed_url.scheme() == "https"
                && parsed_url.host_str() == Some(GEMINI_FILES_API_HOST)
                && parsed_url.path().contains("/files/")
        })
    };
    is_reference.then(|| FileData {
        mime_type: guess_mime_type_from_file_name(url).map(str::to_string),
        file_uri: url.to_string(),
    })
}

/// Splits `data:<mime>[;params];base64,<data>` into the lower-cased MIME type
/// and the validated base64 data.
pub fn decode_data_url(url: &str) -> Result<(String, String), &'static str> {
    let malformed = || "malformed data URL";
    let after_scheme = url.get("data:".len()..).ok_or_else(malformed)?;
    let (header, data) = after_scheme.split_once(',').ok_or_else(malformed)?;
    let mut header_pieces = header.split(';');
    let mime_type = header_pieces.next().unwrap_or_default().trim();
    let is_base64 = header_pieces.any(|piece| piece.trim().eq_ignore_ascii_case("base64"));
    if !is_base64 || !mime_type.contains('/') {
        return Err(malformed());
    }
    let base64_data = validated_base64(data).ok_or("data URL content is not valid base64")?;
    Ok((mime_type.to_ascii_lowercase(), base64_data))
}

/// The base64 text without whitespace, if it is non-empty and decodes
/// (standard or URL-safe alphabet, padding optional).
pub fn validated_base64(data: &str) -> Option<String> {
    let compact_data: String = data.chars().filter(|character| !character.is_ascii_whitespace()).collect();
    if compact_data.is_empty() {
        return None;
    }
    let lenient_config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard_engine = GeneralPurpose::new(&alphabet::STANDARD, lenient_config);
    let url_safe_engine = GeneralPurpose::new(&alphabet::URL_SAFE, lenient_config);
    let decodes = standard_engine.decode(compact_data.as_bytes()).is_ok()
        || url_safe_engine.decode(compact_data.as_bytes()).is_ok();
    decodes.then_some(compact_data)
}

/// `{"type":"input_audio","input_audio":{"data","format"}}` → inline
/// `audio/<format>` (a data URL in `data` supplies its own MIME type).
/// A MIME type Gemini understands, guessed from a file name's extension.
pub fn guess_mime_type_from_file_name(file_name: &str) -> Option<&'static str> {
    let last_path_segment = file_name.rsplit('/').next().unwrap_or(file_name);
    let (_, extension) = last_path_segment.rsplit_once('.')?;
    let mime_type = match extension.to_ascii_lowercase().as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "xml" => "text/xml",
        "json" => "application/json",
        "rtf" => "text/rtf",
        "js" => "text/javascript",
        "py" => "text/x-python",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "aiff" => "audio/aiff",
        "m4a" => "audio/m4a",
        "mp4" => "video/mp4",
        "mpeg" | "mpg" => "video/mpeg",
        "mov" => "video/mov",
        "avi" => "video/avi",
        "webm" => "video/webm",
        "wmv" => "video/wmv",
        "flv" => "video/x-flv",
        "3gp" | "3gpp" => "video/3gpp",
        _ => return None,
    };
    Some(mime_type)
}
