//! Messages for people at a terminal or in a log: English and Chinese in
//! one line, `English / 中文`, as the API errors are ("Invalid API key /
//! 密码错误"). A page that knows its reader's language shows one half
//! ([`in_lang`]). Also the "did you mean …?" of a misspelt name.

use crate::i18n::Lang;

/// Between the English and the Chinese half of a message.
pub const SEPARATOR: &str = " / ";

/// `en / zh`. The Chinese half must not contain [`SEPARATOR`] (text from
/// elsewhere put in it goes through [`inline`]).
pub fn both(en: &str, zh: &str) -> String {
    format!("{en}{SEPARATOR}{zh}")
}

/// Text from elsewhere (a library's error, a value), made safe to put in
/// the Chinese half of [`both`].
pub fn inline(text: &str) -> String {
    text.replace(SEPARATOR, "/")
}

/// The English and Chinese halves of a [`both`] message (split at its
/// last separator); text that has no Chinese half is both halves.
pub fn halves(text: &str) -> (&str, &str) {
    text.rsplit_once(SEPARATOR).unwrap_or((text, text))
}

/// The half of a [`both`] message in `lang` (a page that shows one).
pub fn in_lang(text: &str, lang: Lang) -> &str {
    let (en, zh) = halves(text);
    match lang {
        Lang::En => en,
        Lang::Zh => zh,
    }
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`,
/// ignoring ASCII case.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_uppercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_uppercase()).collect();
    // Three rows of the optimal-string-alignment table.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate nearest to `word` when it is near enough to be what was
/// meant (at most a third of its letters wrong, and at least two allowed).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_has_two_halves_and_a_page_shows_one() {
        let message = both("expected a number", "应为数字");
        assert_eq!(message, "expected a number / 应为数字");
        assert_eq!(in_lang(&message, Lang::En), "expected a number");
        assert_eq!(in_lang(&message, Lang::Zh), "应为数字");
        // English text with a slash of its own still splits right.
        let message = both("http / socks", &format!("代理（{}）", inline("a / b")));
        assert_eq!(halves(&message), ("http / socks", "代理（a/b）"));
        assert_eq!(halves("only English"), ("only English", "only English"));
    }

    #[test]
    fn misspelt_names_find_the_one_meant() {
        let names = ["PASSWORD", "PORT", "WEB_PASSWORD", "MAX_RETRY_NUM"];
        assert_eq!(edit_distance("pasword", "PASSWORD"), 1);
        assert_eq!(edit_distance("prot", "PORT"), 1, "a swap is one edit");
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(nearest("pasword", names), Some("PASSWORD"));
        assert_eq!(nearest("prot", names), Some("PORT"));
        assert_eq!(nearest("web_pasword", names), Some("WEB_PASSWORD"));
        assert_eq!(nearest("max_retry_nums", names), Some("MAX_RETRY_NUM"));
        assert_eq!(nearest("colour", names), None);
    }
}
