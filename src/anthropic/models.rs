//! `GET /v1/models` as Anthropic's SDKs read it: `{"data":[{"type":"model",
//! "id","display_name","created_at"}],"has_more","first_id","last_id"}`,
//! paged by `limit` (1 to 1000, default 20) and `after_id` / `before_id`.

use serde_json::{json, Value};

/// When every model "was created" (Anthropic's field is required; Gemini
/// does not tell).
pub const CREATED_AT: &str = "2024-01-01T00:00:00Z";
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 1000;

/// One model entry.
pub fn model(id: &str) -> Value {
    json!({"type": "model", "id": id, "display_name": id, "created_at": CREATED_AT})
}

/// One page of `ids`: `limit` entries after `after_id`, or before
/// `before_id`. An id not in the list starts from the beginning (after) or
/// the end (before).
pub fn model_page(ids: &[String], limit: Option<usize>, after_id: Option<&str>, before_id: Option<&str>) -> Value {
    let limit = limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let position = |id: &str| ids.iter().position(|known| known == id);
    let (start, end) = match (before_id, after_id) {
        (Some(before), _) => {
            let end = position(before).unwrap_or(ids.len());
            (end.saturating_sub(limit), end)
        }
        (None, Some(after)) => {
            let start = position(after).map_or(0, |index| index + 1);
            (start, (start + limit).min(ids.len()))
        }
        (None, None) => (0, limit.min(ids.len())),
    };
    let page = &ids[start..end];
    let has_more = if before_id.is_some() { start > 0 } else { end < ids.len() };
    json!({
        "data": page.iter().map(|id| model(id)).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": page.first(),
        "last_id": page.last(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_after_and_before_ids() {
        let ids: Vec<String> = (0..5).map(|n| format!("m{n}")).collect();
        let first = model_page(&ids, Some(2), None, None);
        assert_eq!(first["data"][0], model("m0"));
        assert_eq!((first["first_id"].as_str(), first["last_id"].as_str()), (Some("m0"), Some("m1")));
        assert_eq!(first["has_more"], true);
        let next = model_page(&ids, Some(2), Some("m1"), None);
        assert_eq!(next["first_id"], "m2");
        let last = model_page(&ids, Some(2), Some("m3"), None);
        assert_eq!((last["data"].as_array().unwrap().len(), &last["has_more"]), (1, &json!(false)));
        let before = model_page(&ids, Some(2), None, Some("m3"));
        assert_eq!((before["first_id"].as_str(), before["has_more"].as_bool()), (Some("m1"), Some(true)));
        let all = model_page(&ids, None, None, None);
        assert_eq!((all["data"].as_array().unwrap().len(), &all["has_more"]), (5, &json!(false)));
        let empty = model_page(&[], None, None, None);
        assert_eq!((empty["first_id"].is_null(), empty["has_more"].as_bool()), (true, Some(false)));
    }
}
