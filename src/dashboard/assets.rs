//! The dashboard's static files (CSS, a little JS, the favicon), embedded in
//! the binary with `include_bytes!` so nothing is fetched from a CDN or the
//! disk at run time. Served at `{prefix}/assets/{name}` without a session.

/// The embedded files: name, bytes, content type.
const ASSETS: &[(&str, &[u8], &str)] = &[
    ("style.css", include_bytes!("../../assets/style.css"), "text/css; charset=utf-8"),
    ("app.js", include_bytes!("../../assets/app.js"), "text/javascript; charset=utf-8"),
    ("favicon.svg", include_bytes!("../../assets/favicon.svg"), "image/svg+xml"),
];

/// The bytes and content type of the asset called `name` (`style.css`,
/// `app.js`, `favicon.svg`); `None` for any other name.
pub fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    ASSETS.iter().find(|(asset_name, _, _)| *asset_name == name).map(|&(_, bytes, content_type)| (bytes, content_type))
}

/// The names of every embedded asset.
pub fn names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|&(name, _, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_asset_is_embedded_and_non_empty() {
        for name in ["style.css", "app.js", "favicon.svg"] {
            let (bytes, content_type) = asset(name).unwrap_or_else(|| panic!("{name} is not embedded"));
            assert!(!bytes.is_empty(), "{name} is empty");
            assert!(!content_type.is_empty(), "{name} has no content type");
        }
        assert_eq!(names().count(), 3);
    }

    #[test]
    fn unknown_names_are_not_found() {
        for name in ["", "style", "../Cargo.toml", "assets/style.css", "STYLE.CSS", "app.js.map", "iana"] {
            assert!(asset(name).is_none(), "{name:?} was found");
        }
    }

    #[test]
    fn content_types_match_the_files() {
        assert_eq!(asset("style.css").map(|a| a.1), Some("text/css; charset=utf-8"));
        assert_eq!(asset("app.js").map(|a| a.1), Some("text/javascript; charset=utf-8"));
        assert_eq!(asset("favicon.svg").map(|a| a.1), Some("image/svg+xml"));
    }

    #[test]
    fn the_script_never_builds_html_from_strings() {
        let (script, _) = asset("app.js").unwrap();
        let script = std::str::from_utf8(script).unwrap();
        for forbidden in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            assert!(!script.contains(forbidden), "app.js uses {forbidden}");
        }
    }
}
