//! Languages hajimi speaks to people: English and Chinese. [`Lang`] is
//! what a dashboard page, a flash or a startup message is written in; the
//! dashboard's strings are in `dashboard::text`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// `en` or `zh` (a cookie value, `DASHBOARD_LANG`, the `lang`
    /// attribute of a page).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" | "english" => Some(Lang::En),
            "zh" | "zh-cn" | "chinese" | "中文" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The language an `Accept-Language` header asks for first among the
    /// two: Chinese for any `zh*` ranked above every `en*`, else English.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|part| part.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag.starts_with("zh") {
                Lang::Zh
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }

    /// The other language (the page's switch).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_first_of_the_two_it_ranks() {
        let cases = [
            ("zh-CN,zh;q=0.9,en;q=0.8", Lang::Zh),
            ("en-US,en;q=0.9,zh-CN;q=0.8", Lang::En),
            ("fr-FR,fr;q=0.9,zh-TW;q=0.5", Lang::Zh),
            ("en;q=0.3, zh-Hans;q=0.7", Lang::Zh),
            ("de", Lang::En),
            ("", Lang::En),
            ("zh;q=0", Lang::En),
        ];
        for (header, expected) in cases {
            assert_eq!(Lang::from_accept_language(header), expected, "{header}");
        }
        assert_eq!(Lang::parse("ZH"), Some(Lang::Zh));
        assert_eq!(Lang::parse("fr"), None);
    }
}
