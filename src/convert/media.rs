//! Content as Gemini parts, for every front door: inline data, file
//! references (`gs://`, Gemini Files API URLs), data URLs and base64
//! checks, MIME types guessed from file names.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};

use crate::bodyshare::BodyStr;
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

pub fn inline_data_part(mime_type: String, base64_data: BodyStr) -> Part {
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
/// and the validated base64 data (a slice of `url` when it is shared).
pub fn decode_data_url(url: &BodyStr) -> Result<(String, BodyStr), &'static str> {
    let malformed = || "malformed data URL";
    let after_scheme = url.get("data:".len()..).ok_or_else(malformed)?;
    let (header, _) = after_scheme.split_once(',').ok_or_else(malformed)?;
    let mut header_pieces = header.split(';');
    let mime_type = header_pieces.next().unwrap_or_default().trim();
    let is_base64 = header_pieces.any(|piece| piece.trim().eq_ignore_ascii_case("base64"));
    if !is_base64 || !mime_type.contains('/') {
        return Err(malformed());
    }
    let data = url.slice("data:".len() + header.len() + 1..url.len());
    let base64_data = validated_base64(data).ok_or("data URL content is not valid base64")?;
    Ok((mime_type.to_ascii_lowercase(), base64_data))
}

/// The base64 text without whitespace (itself when it has none), if it
/// is non-empty and decodes (standard or URL-safe alphabet, padding
/// optional).
pub fn validated_base64(data: BodyStr) -> Option<BodyStr> {
    let compact_data = if data.bytes().any(|byte| byte.is_ascii_whitespace()) {
        let mut compact = String::with_capacity(data.len());
        compact.extend(data.chars().filter(|character| !character.is_ascii_whitespace()));
        BodyStr::from(compact)
    } else {
        data
    };
    if compact_data.is_empty() {
        return None;
    }
    let lenient_config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard_engine = GeneralPurpose::new(&alphabet::STANDARD, lenient_config);
    let url_safe_engine = GeneralPurpose::new(&alphabet::URL_SAFE, lenient_config);
    let decodes = decodes_with(&standard_engine, compact_data.as_bytes())
        || decodes_with(&url_safe_engine, compact_data.as_bytes());
    decodes.then_some(compact_data)
}

/// Whether `data` decodes, checked a piece at a time into a small buffer
/// (an image is not decoded whole only to be thrown away). Pieces are
/// whole 4-character groups, so only the last can carry padding, as in
/// one decode of the whole.
fn decodes_with(engine: &GeneralPurpose, data: &[u8]) -> bool {
    const PIECE: usize = 4 * 1024;
    let mut decoded = [0u8; PIECE / 4 * 3];
    data.chunks(PIECE).all(|piece| engine.decode_slice(piece, &mut decoded).is_ok())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked piece by piece, base64 is valid exactly when one decode of
    /// the whole succeeds, around the piece boundary too.
    #[test]
    fn base64_checked_in_pieces_agrees_with_one_whole_decode() {
        let lenient = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        let standard = GeneralPurpose::new(&alphabet::STANDARD, lenient);
        let url_safe = GeneralPurpose::new(&alphabet::URL_SAFE, lenient);
        let whole = |text: &str| standard.decode(text).is_ok() || url_safe.decode(text).is_ok();
        for length in [1, 2, 3, 4095, 4096, 4097, 8191, 8192, 8193] {
            let bytes: Vec<u8> = (0..length).map(|n| (n * 7 % 251) as u8).collect();
            let encoded = standard.encode(&bytes);
            let unpadded = encoded.trim_end_matches('=').to_owned();
            let url = url_safe.encode(&bytes);
            let mut variants =
                vec![encoded.clone(), unpadded.clone(), url, format!("{encoded}="), format!("{unpadded}A")];
            let mut broken = encoded.clone();
            broken.replace_range(encoded.len() / 2..encoded.len() / 2 + 1, "*");
            variants.push(broken);
            if encoded.len() > 8 {
                let mut padded_inside = encoded.clone();
                padded_inside.replace_range(4..5, "=");
                variants.push(padded_inside);
            }
            for text in variants {
                assert_eq!(
                    validated_base64(text.as_str().into()).is_some(),
                    whole(&text),
                    "length {length}: {}",
                    &text[..text.len().min(8)]
                );
            }
        }
        assert_eq!(validated_base64("QUJD\nREVG".into()).as_deref(), Some("QUJDREVG"), "whitespace removed");
        assert_eq!(validated_base64(" \n".into()), None);
    }
}
