//! Renders every page with sample data (hostile strings included), in
//! both languages, and checks escaping, the element ids of the contract,
//! the CSRF field of every POST form and one language per page. With
//! `HAJIMI_WRITE_PAGES` set, also writes the pages and the assets to
//! `/tmp/hajimi-pages/` to look at them in a browser.

use askama::Template;

use crate::dashboard::assets::{asset, names};
use crate::dashboard::text::{self, Lang};
use crate::dashboard::views::*;

const SCRIPT: &str = "<script>alert(1)</script>";
const SCRIPT_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
const ATTRIBUTE: &str = "\"onmouseover=alert(2) x=\"";
const CSRF: &str = "c5rf70k3n";
const PAGES_DIR: &str = "/tmp/hajimi-pages";

fn hostile(label: &str) -> String {
    format!("{label} {SCRIPT} {ATTRIBUTE}")
}

/// The sample pages are written as the handlers write them: every word
/// from `t` (the page's language), data as data.
fn chrome(prefix: &str, t: &'static Text, active: &'static str) -> Chrome {
    let lang = if std::ptr::eq(t, &text::ZH) { Lang::Zh } else { Lang::En };
    Chrome {
        t,
        lang: lang.code(),
        switch_url: Some(format!("{prefix}/lang?to={}&back={prefix}/keys", lang.other())),
        zone_note: text::fill(t.times_in_zone, &[("zone", &"Asia/Shanghai")]),
        prefix: prefix.to_string(),
        csrf: CSRF.to_string(),
        active,
        banners: vec![
            Banner { id: "banner-default-api-password", text: t.banner_default_api_password.to_string() },
            Banner { id: "banner-no-storage", text: format!("{} {SCRIPT} {ATTRIBUTE}", t.banner_no_storage) },
        ],
        flash: Some(Flash {
            kind: "ok",
            text: format!("{} {SCRIPT} {ATTRIBUTE}", text::fill(t.keys_added, &[("added", &3)])),
        }),
        version: "0.1.0",
    }
}

fn login(prefix: &str, t: &'static Text, error: bool) -> LoginPage {
    let lang = if std::ptr::eq(t, &text::ZH) { Lang::Zh } else { Lang::En };
    LoginPage {
        t,
        lang: lang.code(),
        switch_url: Some(format!("{prefix}/lang?to={}&back={prefix}/login", lang.other())),
        prefix: prefix.to_string(),
        csrf: CSRF.to_string(),
        error: error.then(|| format!("{} {SCRIPT} {ATTRIBUTE}", t.wrong_password)),
        // The error page also shows the setup form.
        setup: error,
        version: "0.1.0",
    }
}

fn password(prefix: &str, t: &'static Text, forced: bool) -> PasswordPage {
    PasswordPage {
        chrome: Chrome { flash: None, ..chrome(prefix, t, "password") },
        forced,
        error: Some(format!("{} {SCRIPT} {ATTRIBUTE}", t.password_mismatch)),
    }
}

fn chart(t: &'static Text, title: &'static str, max_label: &str) -> Chart {
    let points: Vec<String> = (0..=48)
        .map(|i| {
            let y = 100.0 - 40.0 - 35.0 * ((i as f64) / 5.0).sin() - (i % 7) as f64 * 3.0;
            format!("{},{:.1}", i * 10, y.clamp(0.0, 100.0))
        })
        .collect();
    Chart {
        title,
        width: 480,
        height: 100,
        points: points.join(" "),
        max_label: max_label.to_string(),
        from_label: t.chart_from,
        to_label: t.chart_now,
    }
}

fn overview(prefix: &str, t: &'static Text) -> OverviewPage {
    let count = |label: &str, value: &str| CountRow { label: label.to_string(), value: value.to_string() };
    let window = |label: &'static str, n: &str| WindowRow {
        label,
        requests: n.to_string(),
        successes: n.to_string(),
        failures: "12".to_string(),
        cache_hits: "3".to_string(),
        prompt_tokens: "1,234,567".to_string(),
        completion_tokens: "345,678".to_string(),
    };
    OverviewPage {
        chrome: chrome(prefix, t, "overview"),
        keys: vec![
            count(t.overview_total, "128"),
            count(t.state_active, "101"),
            count(t.overview_limited, "9"),
            count(t.state_invalid, "14"),
            count(t.state_disabled, "4"),
        ],
        windows: vec![
            window(t.overview_last_minute, "17"),
            window(t.overview_last_hour, "903"),
            window(t.overview_last_day, "18,204"),
        ],
        error_kinds: vec![
            ErrorKindRow { kind: "quota_per_minute".to_string(), count: "210".to_string(), rate: "1.2%".to_string() },
            ErrorKindRow { kind: hostile("upstream"), count: "3".to_string(), rate: "0.0%".to_string() },
        ],
        calls_chart: chart(t, t.chart_requests, "1,204"),
        tokens_chart: chart(t, t.chart_tokens, "2.4 M"),
        active_requests: "3".to_string(),
        cache_entries: "42".to_string(),
        uptime: text::fill(t.duration_days, &[("d", &3), ("h", &4)]),
        version: "0.1.0",
        global_backoff: Some(text::fill(
            t.overview_backoff,
            &[("when", &text::fill(t.in_minutes, &[("m", &2), ("s", &10)]))],
        )),
    }
}

fn usage(model: &str, availability: (&str, &'static str), until: &str) -> UsageCell {
    UsageCell {
        model: model.to_string(),
        availability: availability.0.to_string(),
        availability_label: availability.1,
        until: until.to_string(),
        successes: "48".to_string(),
        failures: "2".to_string(),
        tokens: "120.4 k".to_string(),
    }
}

fn key_row(t: &'static Text, id: u32, state: &'static str) -> KeyRow {
    let state_label = match state {
        "active" => t.badge_active,
        "invalid" => t.badge_invalid,
        _ => t.badge_disabled,
    };
    let in_minutes = text::fill(t.in_minutes, &[("m", &1), ("s", &5)]);
    KeyRow {
        id,
        masked: format!("AIza…X{id:03}"),
        state,
        state_label,
        reason: if state == "invalid" { hostile("API key not valid.") } else { String::new() },
        since: if state == "invalid" {
            text::fill(t.keys_invalid_since, &[("time", &"2024-05-01 10:12:00 CST")])
        } else {
            String::new()
        },
        usage: match state {
            "active" => vec![
                usage("gemini-2.5-pro", ("ready", t.avail_ready), ""),
                usage("gemini-2.5-flash", ("cooling", t.avail_cooling), &in_minutes),
                usage("gemini-2.0-flash", ("over limit", t.avail_over_limit), &in_minutes),
                usage("gemini-2.5-flash-lite", ("exhausted", t.avail_exhausted), &in_minutes),
            ],
            // A key out of service: its own state on every model.
            _ => vec![usage("gemini-2.5-pro", (state, state_label), "")],
        },
        last_error: if id.is_multiple_of(2) {
            "10:02 gemini-2.5-pro rate limited (HTTP 429)".to_string()
        } else {
            String::new()
        },
        last_used: if id == 4 { String::new() } else { "2024-05-01 10:11:58 CST".to_string() },
        last_validated: if id.is_multiple_of(3) { String::new() } else { "2024-05-01 09:00:00 CST".to_string() },
    }
}

fn choice(value: &str, label: &str, selected: bool) -> Choice {
    Choice { value: value.to_string(), label: label.to_string(), selected }
}

fn keys(prefix: &str, t: &'static Text, running: bool) -> KeysPage {
    KeysPage {
        chrome: chrome(prefix, t, "keys"),
        rows: vec![
            key_row(t, 1, "active"),
            key_row(t, 2, "invalid"),
            key_row(t, 3, "disabled"),
            key_row(t, 4, "active"),
        ],
        page: 2,
        pages: 3,
        previous_page: Some(1),
        next_page: Some(3),
        matching: "128".to_string(),
        total: "130".to_string(),
        query: SCRIPT.to_string(),
        states: vec![
            choice("all", t.state_all, false),
            choice("active", t.state_active, true),
            choice("invalid", t.state_invalid, false),
            choice("disabled", t.state_disabled, false),
            choice("limited", t.state_limited, false),
        ],
        filter_query: "q=%3Cscript%3E&state=active".to_string(),
        validation: ValidationView { running, done: 40, total: 130, valid: 35, invalid: 5, percent: 30 },
        limits: vec![
            LimitRow { model: "gemini-2.5-pro".to_string(), limit: "100".to_string() },
            LimitRow { model: hostile("model"), limit: "50".to_string() },
        ],
        default_limit: "250".to_string(),
    }
}

fn setting(t: &'static Text, name: &'static str, kind: &'static str, value: &str) -> SettingRow {
    let lang = if std::ptr::eq(t, &text::ZH) { Lang::Zh } else { Lang::En };
    SettingRow {
        name,
        description: crate::dashboard::settings::spec(name)
            .map_or("What this setting does, in one sentence that may wrap on a phone.", |spec| {
                spec.description_in(lang)
            }),
        kind,
        value: value.to_string(),
        checked: value == "true",
        source: t.source_default.to_string(),
        overridden: false,
        restart_required: false,
        guarded: false,
        error: None,
    }
}

fn settings(prefix: &str, t: &'static Text) -> SettingsPage {
    let lang = if std::ptr::eq(t, &text::ZH) { Lang::Zh } else { Lang::En };
    let setting = |name, kind, value| setting(t, name, kind, value);
    let title =
        |index: usize| crate::dashboard::settings::group_title(crate::dashboard::settings::GROUPS[index].0, lang);
    // The validation reason as `config.rs` gives it ("English / 中文"),
    // shown as the page's half.
    let reason = crate::messages::in_lang("expected a whole number from 1 to 20 / 应为 1 到 20 之间的整数", lang);
    SettingsPage {
        chrome: Chrome { flash: None, ..chrome(prefix, t, "settings") },
        groups: vec![
            SettingsGroup {
                title: title(0),
                settings: vec![
                    SettingRow { source: t.source_env.to_string(), ..setting("PASSWORD", "secret", "") },
                    SettingRow {
                        overridden: true,
                        source: t.source_dashboard.to_string(),
                        error: Some(format!("{reason} {SCRIPT} {ATTRIBUTE}")),
                        ..setting("CONCURRENT_REQUESTS", "number", "abc")
                    },
                    SettingRow { restart_required: true, ..setting("LISTEN_ADDRESS", "text", ATTRIBUTE) },
                    SettingRow { guarded: true, ..setting("GEMINI_BASE_URL", "text", "https://relay.example") },
                    setting("FAKE_STREAMING", "bool", "true"),
                ],
            },
            SettingsGroup {
                title: title(4),
                settings: vec![
                    SettingRow {
                        overridden: true,
                        source: t.source_dashboard.to_string(),
                        ..setting("SEARCH_MODE", "bool", "false")
                    },
                    SettingRow {
                        source: t.source_file.to_string(),
                        ..setting("BLOCKED_MODELS", "list", "gemini-1.0-pro\ngemini-1.5-flash")
                    },
                ],
            },
        ],
        error_summary: Some(text::fill(t.settings_fix, &[("names", &"CONCURRENT_REQUESTS")])),
        guarded_names: "GEMINI_BASE_URL, PROXY_URL".to_string(),
    }
}

fn vertex(prefix: &str, t: &'static Text, problems: bool) -> VertexPage {
    VertexPage {
        chrome: chrome(prefix, t, "vertex"),
        enable_vertex: true,
        enable_vertex_express: false,
        express_keys: vec![
            ExpressKeyRow { id: 0, masked: "AQ.A…3f9k".to_string() },
            ExpressKeyRow { id: 1, masked: "AQ.A…77aa".to_string() },
        ],
        credentials: vec![
            CredentialRow {
                client_email: "gateway@my-project-123456.iam.gserviceaccount.com".to_string(),
                project_id: "my-project-123456".to_string(),
            },
            CredentialRow { client_email: hostile("evil@example.com"), project_id: hostile("project") },
        ],
        in_use: vec![
            VertexInUseRow {
                kind: "express",
                id: 0,
                label: "AQ.A…3f9k".to_string(),
                health: t.badge_active.to_string(),
            },
            VertexInUseRow {
                kind: "account",
                id: 0,
                label: hostile("gateway@my-project-123456.iam.gserviceaccount.com"),
                health: text::fill(t.vertex_health_invalid, &[("reason", &"token grant failed: invalid_grant")]),
            },
        ],
        problems: if problems {
            vec![hostile("GOOGLE_CREDENTIALS_JSON: credential 2: missing field \"project_id\"")]
        } else {
            Vec::new()
        },
    }
}

fn log(prefix: &str, t: &'static Text) -> LogPage {
    let record = |seq: u64, level: &str, source: &str, message: String| LogRow {
        seq,
        time: format!("2024-05-01 10:12:{:02}", seq % 60),
        level: level.to_string(),
        source: source.to_string(),
        message,
    };
    LogPage {
        chrome: Chrome { flash: None, ..chrome(prefix, t, "log") },
        records: vec![
            record(41, "INFO", "dashboard", "login from 203.0.113.9".to_string()),
            record(42, "WARN", "studio", "key #12 gemini-2.5-pro rate limited (HTTP 429), cooling 60 s".to_string()),
            record(43, "ERROR", "key checks", hostile("key #7 invalid:")),
            record(
                44,
                "INFO",
                "studio",
                "chat gemini-2.5-pro key #3 200 in 2.4 s, 1,204 prompt + 318 completion tokens, a long line that wraps"
                    .to_string(),
            ),
        ],
        levels: vec![
            choice("", t.log_all_levels, true),
            choice("error", t.log_errors, false),
            choice("warn", t.log_warnings, false),
            choice("info", t.log_info, false),
        ],
        sources: vec![
            choice("", t.log_all_sources, true),
            choice("studio", "studio", false),
            choice("vertex", "vertex", false),
            choice("dashboard", "dashboard", false),
            choice("key checks", "key checks", false),
        ],
        stream_url: format!("{prefix}/log/stream?level=&source="),
        capacity: "1000".to_string(),
    }
}

fn message(prefix: &str, t: &'static Text) -> MessagePage {
    MessagePage {
        chrome: Chrome {
            flash: Some(Flash { kind: "error", text: t.export_refused_title.to_string() }),
            ..chrome(prefix, t, "keys")
        },
        title: t.export_refused_title.to_string(),
        message: format!("{} {SCRIPT} {ATTRIBUTE}", t.export_refused),
    }
}

/// Every page in English, rendered: (file name, html).
fn render_all(prefix: &str) -> Vec<(&'static str, String)> {
    render_all_in(prefix, Lang::En)
}

/// Every page in `lang`, rendered: (file name, html).
fn render_all_in(prefix: &str, lang: Lang) -> Vec<(&'static str, String)> {
    let t = text::text(lang);
    let render = |page: &dyn DynRender| page.render_page();
    // The validation box once idle after a run, once before any.
    let mut never_validated = keys(prefix, t, false);
    never_validated.validation = ValidationView { running: false, done: 0, total: 0, valid: 0, invalid: 0, percent: 0 };
    never_validated.rows.clear();
    never_validated.pages = 1;
    vec![
        ("login", render(&login(prefix, t, true))),
        ("login-plain", render(&login(prefix, t, false))),
        ("password", render(&password(prefix, t, false))),
        ("password-forced", render(&password(prefix, t, true))),
        ("overview", render(&overview(prefix, t))),
        (
            "overview-quiet",
            render(&OverviewPage { error_kinds: Vec::new(), global_backoff: None, ..overview(prefix, t) }),
        ),
        ("keys", render(&keys(prefix, t, true))),
        ("keys-idle", render(&keys(prefix, t, false))),
        ("keys-empty", render(&never_validated)),
        ("settings", render(&settings(prefix, t))),
        ("vertex", render(&vertex(prefix, t, false))),
        (
            "vertex-empty",
            render(&VertexPage {
                express_keys: Vec::new(),
                credentials: Vec::new(),
                in_use: Vec::new(),
                ..vertex(prefix, t, false)
            }),
        ),
        ("vertex-problems", render(&vertex(prefix, t, true))),
        ("log", render(&log(prefix, t))),
        ("message", render(&message(prefix, t))),
    ]
}

/// Object-safe rendering, so pages of different types fit in one list.
trait DynRender {
    fn render_page(&self) -> String;
}

impl<T: Template> DynRender for T {
    fn render_page(&self) -> String {
        self.render().expect("template renders")
    }
}

/// One rendered page, its character references spelled the named way
/// (askama writes `&#60;`, browsers read both), so needles stay readable.
fn page(name: &str) -> String {
    let html = render_all("/admin").into_iter().find(|(n, _)| *n == name).map(|(_, html)| html).expect("page exists");
    html.replace("&#38;", "&amp;")
        .replace("&#60;", "&lt;")
        .replace("&#62;", "&gt;")
        .replace("&#34;", "&quot;")
        .replace("&#39;", "&apos;")
}

/// Every page in both languages: (name, language, html).
fn render_both(prefix: &str) -> Vec<(&'static str, Lang, String)> {
    Lang::ALL
        .into_iter()
        .flat_map(|lang| render_all_in(prefix, lang).into_iter().map(move |(name, html)| (name, lang, html)))
        .collect()
}

fn has_cjk(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3000}'..='\u{303f}').contains(&c))
}

/// The page's text without its language switch (the one element that
/// names the other language in that language).
fn without_switch(html: &str) -> String {
    match html.find("<a class=\"lang-switch\"") {
        Some(start) => {
            let end = start + html[start..].find("</a>").expect("the switch is closed") + 4;
            format!("{}{}", &html[..start], &html[end..])
        }
        None => html.to_owned(),
    }
}

/// Attributes whose values people read (or hear): the rest (`class`,
/// `data-avail`, `value`, …) are hooks and data.
const WORD_ATTRIBUTES: &[&str] = &[
    "title",
    "aria-label",
    "placeholder",
    "alt",
    "data-confirm",
    "data-checking",
    "data-finished",
    "data-connecting",
    "data-live",
    "data-stopped",
    "data-reconnecting",
];

/// What a person meets on the page: its text, and the values of
/// [`WORD_ATTRIBUTES`], one per line.
fn visible_words(html: &str) -> String {
    let mut out = String::new();
    for piece in html.split('<').skip(1) {
        let (tag, text) = piece.split_once('>').unwrap_or((piece, ""));
        for attribute in WORD_ATTRIBUTES {
            let needle = format!(" {attribute}=\"");
            if let Some(at) = tag.find(&needle) {
                out.push_str(tag[at + needle.len()..].split('"').next().unwrap_or(""));
                out.push('\n');
            }
        }
        out.push_str(text);
        out.push('\n');
    }
    out
}

/// Parts of an English string that are words of the UI: the text
/// between its `{placeholders}`, kept when it is more than one word.
fn english_sentences(english: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = english;
    loop {
        let (before, after) = match rest.find('{') {
            Some(open) => (&rest[..open], rest[open..].find('}').map(|close| &rest[open + close + 1..])),
            None => (rest, None),
        };
        let part = before.trim_matches(|c: char| !c.is_alphanumeric());
        if part.contains(' ') {
            parts.push(part.to_owned());
        }
        match after {
            Some(after) => rest = after,
            None => break,
        }
    }
    parts
}

#[test]
fn every_page_is_written_in_its_language_only() {
    for (name, lang, html) in render_both("/admin") {
        let html = html.replace("&#39;", "'").replace("&#34;", "\"").replace("&#38;", "&");
        let root = format!("<html lang=\"{}\">", lang.code());
        assert!(html.contains(&root), "{name} ({lang}): no {root}");
        let body = visible_words(&without_switch(&html));
        match lang {
            Lang::En => assert!(!has_cjk(&body), "{name} (en): Chinese outside the language switch"),
            Lang::Zh => {
                assert!(has_cjk(&body), "{name} (zh): no Chinese at all");
                // No English sentence of the catalogue: a page (or a
                // part of one) that fell back to English shows one.
                for (string, english, chinese) in text::ALL {
                    if english == chinese || !english.contains(' ') {
                        continue;
                    }
                    for sentence in english_sentences(english) {
                        assert!(!body.contains(&sentence), "{name} (zh): English {string}: {sentence:?}");
                    }
                }
            }
        }
        assert!(
            !body.contains(" / ") || !has_cjk(&body[body.find(" / ").unwrap()..]),
            "{name} ({lang}): mixed \"English / 中文\" text"
        );
    }
}

#[test]
fn the_sentence_check_would_see_a_page_left_in_english() {
    // The check above, proven on itself: an English page read as a
    // Chinese one trips it.
    let english = page("keys");
    let tripped = text::ALL.iter().filter(|(_, en, zh)| en != zh && en.contains(' ')).any(|(_, en, _)| {
        english_sentences(en)
            .iter()
            .any(|sentence| visible_words(&without_switch(&english)).contains(sentence.as_str()))
    });
    assert!(tripped);
    assert!(english_sentences("Checking: {done} of {total} ({percent}%) · valid {valid}").is_empty());
    assert_eq!(english_sentences("{n} key(s) disabled."), ["key(s) disabled"]);
    assert_eq!(
        english_sentences("Delete the selected keys? This cannot be undone."),
        ["Delete the selected keys? This cannot be undone"]
    );
}

#[test]
fn chinese_pages_carry_the_chinese_words_of_each_part() {
    let zh: std::collections::HashMap<&str, String> = render_all_in("/admin", Lang::Zh).into_iter().collect();
    let t = &text::ZH;
    let expected: &[(&str, &[&str])] = &[
        ("login", &[t.login_title, t.setup_code_label, t.wrong_password]),
        ("login-plain", &[t.login_heading, t.password_label, t.log_in]),
        ("password", &[t.change_dashboard_password, t.password_current, t.password_save, t.nav_label]),
        ("password-forced", &[t.password_set_heading, t.password_forced_note]),
        (
            "overview",
            &[t.overview_active_requests, t.overview_errors_by_kind, t.chart_requests, t.overview_backoff_label],
        ),
        ("overview-quiet", &[t.overview_no_failures]),
        ("keys", &[t.keys_delete_confirm, t.keys_used_validated, t.avail_cooling, t.badge_disabled, t.validate_all]),
        ("keys-empty", &[t.keys_none_match, t.validation_none]),
        (
            "settings",
            &[t.settings_intro, t.settings_restart_required, t.settings_guarded_tag, t.source_env, t.settings_save_all],
        ),
        ("vertex", &[t.vertex_mode, t.vertex_in_use, t.vertex_add_account_button]),
        ("vertex-empty", &[t.vertex_none_before, t.vertex_no_express, t.vertex_no_accounts]),
        ("log", &[t.log_all_levels, t.log_live_off, t.log_live_connecting, t.log_live_stopped]),
        ("message", &[t.export_refused, t.nav_overview]),
    ];
    for (name, needles) in expected {
        let html = &zh[name];
        for needle in *needles {
            assert!(html.contains(needle), "{name} (zh): missing {needle:?}");
        }
    }
    // Values that are data stay as they are; their CSS hooks stay English.
    let keys = &zh["keys"];
    for data in
        ["data-avail=\"over limit\"", "data-avail=\"disabled\"", "state-invalid", "gemini-2.0-flash", "AIza…X001"]
    {
        assert!(keys.contains(data), "keys (zh): missing {data}");
    }
    let settings = &zh["settings"];
    assert!(settings.contains("应为 1 到 20 之间的整数") && !settings.contains("expected a whole number"));
    assert!(settings.contains(">MAX_RETRY_NUM<") || settings.contains("<code>CONCURRENT_REQUESTS</code>"));
    assert!(settings.contains("API 客户端必须携带的密钥"), "a setting's Chinese description");
    assert!(settings.contains("API 访问"), "a group's Chinese title");
    // The words app.js shows, in the page's language.
    assert!(keys.contains(&format!("data-checking=\"{}\"", t.validation_checking)));
    assert!(zh["log"].contains(&format!("data-reconnecting=\"{}\"", t.log_live_reconnecting)));
}

#[test]
fn hostile_text_is_only_ever_escaped() {
    for (name, _, html) in render_both("/admin") {
        assert!(!html.contains(SCRIPT), "{name}: raw <script> from data");
        assert!(!html.contains("\"onmouseover="), "{name}: raw quote from data");
        assert!(!html.contains("<script>"), "{name}: inline script block");
        assert!(!html.contains("|safe"), "{name}: template syntax leaked");
    }
    for name in ["login", "password", "overview", "keys", "settings", "vertex", "log", "message"] {
        let html = page(name);
        assert!(html.contains(SCRIPT_ESCAPED), "{name}: hostile text missing or escaped differently");
        assert!(html.contains("&quot;onmouseover="), "{name}: quote");
    }
}

#[test]
fn no_inline_handlers_or_styles_the_csp_would_block() {
    for (name, _, html) in render_both("/admin") {
        let lower = html.to_ascii_lowercase();
        for forbidden in [" onclick=", " onload=", " onchange=", " onsubmit=", " style=", "javascript:", "<style"] {
            assert!(!lower.contains(forbidden), "{name}: contains {forbidden:?}");
        }
        for (at, _) in lower.match_indices("<script") {
            let tag = &lower[at..at + lower[at..].find('>').unwrap()];
            assert!(tag.contains(" src=") && tag.contains(" defer"), "{name}: script without src/defer: {tag}");
        }
    }
}

#[test]
fn every_post_form_carries_the_csrf_token() {
    for (name, _, html) in render_both("/admin") {
        let mut forms = 0;
        for (at, _) in html.match_indices("<form") {
            let end = at + html[at..].find("</form>").unwrap_or_else(|| panic!("{name}: unclosed form"));
            let form = &html[at..end];
            let open_tag = &form[..form.find('>').unwrap()];
            if !open_tag.contains("method=\"post\"") {
                assert!(open_tag.contains("method=\"get\""), "{name}: form without method: {open_tag}");
                assert!(!form.contains("name=\"csrf\""), "{name}: token in a GET form leaks into URLs");
                continue;
            }
            forms += 1;
            assert!(
                form.contains(&format!("<input type=\"hidden\" name=\"csrf\" value=\"{CSRF}\">")),
                "{name}: POST form without csrf: {open_tag}"
            );
            assert!(open_tag.contains("action=\"/admin/"), "{name}: action outside the prefix: {open_tag}");
            assert!(!form[1..].contains("<form"), "{name}: nested form");
        }
        assert!(forms > 0, "{name}: no POST form at all");
    }
}

#[test]
fn pages_carry_the_element_ids_of_the_contract() {
    let expected: &[(&str, &[&str])] = &[
        ("login", &["id=\"login-form\"", "id=\"login-setup-code\"", "name=\"setup_code\""]),
        ("login-plain", &["id=\"login-form\"", "id=\"login-password\"", "name=\"password\""]),
        ("password", &["id=\"password-form\"", "id=\"nav\"", "name=\"current\"", "id=\"banner-default-api-password\""]),
        ("overview", &["id=\"nav\"", "id=\"flash\"", "id=\"banner-default-api-password\"", "<polyline"]),
        (
            "keys",
            &["id=\"keys-add-form\"", "id=\"keys-table\"", "id=\"validation-progress\"", "<progress", "id=\"flash\""],
        ),
        ("keys-idle", &["id=\"validation-progress\"", "<progress"]),
        ("settings", &["id=\"settings-form\"", "class=\"field-error\""]),
        ("vertex", &["id=\"vertex-toggles\"", "name=\"enable_vertex\"", "name=\"enable_vertex_express\""]),
        ("log", &["id=\"log-records\"", "data-seq=\"41\"", "data-stream-url=\"/admin/log/stream?"]),
        ("message", &["id=\"nav\"", "id=\"flash\""]),
    ];
    for (name, needles) in expected {
        let html = page(name);
        for needle in *needles {
            assert!(html.contains(needle), "{name}: missing {needle}");
        }
        assert!(html.contains("src=\"/admin/assets/app.js\"") || name.starts_with("login"), "{name}: no app.js");
        assert!(html.contains("href=\"/admin/assets/style.css\""), "{name}: no stylesheet");
    }
    // The login page is open to anyone: no banner on it.
    assert!(!page("login").contains("class=\"banner"));
    assert!(!page("login-plain").contains("class=\"banner"));
    let flash = page("overview");
    assert!(flash.contains("<div id=\"flash\" class=\"flash ok\" role=\"status\">"));
    assert!(flash.contains("<div class=\"banner\" id=\"banner-default-api-password\""));
}

#[test]
fn the_forced_password_page_hides_the_nav_and_the_current_field() {
    let forced = page("password-forced");
    assert!(!forced.contains("id=\"nav\""));
    assert!(!forced.contains("/logout"));
    assert!(!forced.contains("name=\"current\""));
    assert!(forced.contains("name=\"new_password\"") && forced.contains("name=\"confirm\""));
    assert!(forced.contains("id=\"banner-default-api-password\""));
}

#[test]
fn the_nav_links_every_page_and_marks_the_current_one() {
    let html = page("keys");
    for path in ["/admin/\"", "/admin/keys\"", "/admin/settings\"", "/admin/vertex\"", "/admin/log\""] {
        assert!(html.contains(&format!("href=\"{path}")), "nav lacks {path}");
    }
    assert!(html.contains("action=\"/admin/logout\""));
    assert!(html.contains("href=\"/admin/keys\" aria-current=\"page\""));
    assert_eq!(html.matches("aria-current=\"page\"").count(), 1);
}

#[test]
fn the_keys_page_offers_every_action() {
    let html = page("keys");
    for needle in [
        "action=\"/admin/keys/action\"",
        "name=\"id\" value=\"1\"",
        "name=\"action\" value=\"enable\"",
        "name=\"action\" value=\"disable\"",
        "name=\"action\" value=\"delete\"",
        "name=\"action\" value=\"validate\"",
        "action=\"/admin/keys/add\"",
        "name=\"keys\"",
        "action=\"/admin/keys/validate-all\"",
        "action=\"/admin/keys/clear-invalid\"",
        "action=\"/admin/keys/limits\"",
        "name=\"model\"",
        "name=\"limit\"",
        "action=\"/admin/keys/export\"",
        "type=\"password\" name=\"password\"",
        "href=\"/admin/keys?page=1&amp;q=%3Cscript%3E&amp;state=active\"",
        "href=\"/admin/keys?page=3&amp;q=%3Cscript%3E&amp;state=active\"",
        "name=\"q\" value=\"&lt;script&gt;",
        "<option value=\"active\" selected>",
        "data-running=\"true\"",
        "data-url=\"/admin/keys/validation\"",
        "gemini-2.0-flash",
        "over limit",
    ] {
        assert!(html.contains(needle), "keys: missing {needle}");
    }
    assert!(page("keys-idle").contains("data-running=\"false\""));
}

#[test]
fn the_settings_form_has_one_field_per_setting_by_kind() {
    let html = page("settings");
    for needle in [
        // bool: a hidden "false" first, then the checkbox.
        "<input type=\"hidden\" name=\"FAKE_STREAMING\" value=\"false\">",
        "type=\"checkbox\" name=\"FAKE_STREAMING\" value=\"true\" checked",
        "type=\"checkbox\" name=\"SEARCH_MODE\" value=\"true\" aria-describedby",
        // secret: empty password input.
        "type=\"password\" name=\"PASSWORD\" value=\"\" placeholder=\"unchanged\"",
        // number, text, list.
        "inputmode=\"decimal\" name=\"CONCURRENT_REQUESTS\" value=\"abc\"",
        "type=\"text\" name=\"LISTEN_ADDRESS\" value=\"&quot;onmouseover=",
        "name=\"BLOCKED_MODELS\" rows=\"3\"",
        "gemini-1.0-pro\ngemini-1.5-flash</textarea>",
        "restart required",
        "config file",
        "<p class=\"field-error\" id=\"err-CONCURRENT_REQUESTS\">",
        "Nothing was saved.",
        "action=\"/admin/settings/revert\" id=\"revert-CONCURRENT_REQUESTS\"",
        "<input type=\"hidden\" name=\"name\" value=\"SEARCH_MODE\">",
        "form=\"revert-SEARCH_MODE\" formaction=\"/admin/settings/revert\"",
    ] {
        assert!(html.contains(needle), "settings: missing {needle}");
    }
    assert_eq!(html.matches("<fieldset").count(), 2);
    assert!(!html.contains("id=\"revert-PASSWORD\""), "revert form for a row that is not overridden");
}

#[test]
fn the_vertex_page_lists_tests_and_removes_and_shows_credential_problems() {
    let html = page("vertex");
    for needle in [
        "action=\"/admin/vertex/toggles\"",
        "name=\"enable_vertex\" value=\"true\" checked",
        "action=\"/admin/vertex/express\"",
        "action=\"/admin/vertex/express/remove\"",
        "name=\"id\" value=\"1\"",
        "action=\"/admin/vertex/credentials\"",
        "name=\"json\"",
        "action=\"/admin/vertex/credentials/remove\"",
        "gateway@my-project-123456.iam.gserviceaccount.com",
        "name=\"client_email\" value=\"evil@example.com &lt;script&gt;",
        "id=\"vertex-in-use\"",
        "action=\"/admin/vertex/test\"",
        "name=\"kind\" value=\"account\"",
        "invalid: token grant failed",
    ] {
        assert!(html.contains(needle), "vertex: missing {needle}");
    }
    assert!(!html.contains("name=\"enable_vertex_express\" value=\"true\" checked"));
    assert!(!html.contains("vertex-problem"));
    let with_problems = page("vertex-problems");
    assert!(with_problems.contains("missing field &quot;project_id&quot;"), "problems are shown, escaped");
}

#[test]
fn the_log_page_filters_and_lists_records() {
    let html = page("log");
    for needle in [
        "action=\"/admin/log\"",
        "<select name=\"level\">",
        "<select name=\"source\">",
        "<option value=\"key checks\">",
        "<li data-seq=\"43\" data-level=\"ERROR\">",
        "data-capacity=\"1000\"",
    ] {
        assert!(html.contains(needle), "log: missing {needle}");
    }
    assert_eq!(html.matches("<li data-seq=").count(), 4);
}

#[test]
fn the_overview_draws_both_charts_and_the_backoff_notice() {
    let html = page("overview");
    assert_eq!(html.matches("<svg viewBox=\"0 0 480 100\"").count(), 2);
    assert_eq!(html.matches("<polyline").count(), 2);
    for needle in [
        "Requests per 15 minutes",
        "Tokens per 15 minutes",
        "2.4 M",
        "-24 h",
        "now",
        "Last 24 hours",
        "the whole pool pauses, back in 2 min 10 s.",
        "3 d 4 h",
        "aria-label=\"Requests per 15 minutes, peak 1,204\"",
    ] {
        assert!(html.contains(needle), "overview: missing {needle}");
    }
}

/// `HAJIMI_WRITE_PAGES=1 cargo test --lib write_pages_for_a_browser`
/// writes every page and the assets to /tmp/hajimi-pages/ (links resolve
/// as file URLs there) for screenshots.
#[test]
fn write_pages_for_a_browser() {
    if std::env::var_os("HAJIMI_WRITE_PAGES").is_none() {
        return;
    }
    let dir = std::path::Path::new(PAGES_DIR);
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    for name in names() {
        std::fs::write(dir.join("assets").join(name), asset(name).unwrap().0).unwrap();
    }
    for (name, lang, html) in render_both(PAGES_DIR) {
        let suffix = if lang == Lang::Zh { "-zh" } else { "" };
        std::fs::write(dir.join(format!("{name}{suffix}.html")), html).unwrap();
    }
}
