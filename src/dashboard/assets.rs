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

/// Renders every page with sample data (hostile strings included) and checks
/// escaping, the element ids of the contract and the CSRF field of every
/// POST form. With `HAJIMI_WRITE_PAGES` set, also writes the pages and the
/// assets to `/tmp/hajimi-pages/` to look at them in a browser.
#[cfg(test)]
mod page_tests {
    use askama::Template;

    use super::{asset, names};
    use crate::dashboard::views::*;

    const SCRIPT: &str = "<script>alert(1)</script>";
    const SCRIPT_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
    const ATTRIBUTE: &str = "\"onmouseover=alert(2) x=\"";
    const CSRF: &str = "c5rf70k3n";
    const PAGES_DIR: &str = "/tmp/hajimi-pages";

    fn hostile(label: &str) -> String {
        format!("{label} {SCRIPT} {ATTRIBUTE}")
    }

    fn chrome(prefix: &str, active: &'static str) -> Chrome {
        Chrome {
            prefix: prefix.to_string(),
            csrf: CSRF.to_string(),
            active,
            banners: vec![
                Banner {
                    id: "banner-default-api-password",
                    text: "The API PASSWORD is still the default 123: change it.".to_string(),
                },
                Banner { id: "banner-no-storage", text: hostile("ENABLE_STORAGE=false: nothing is saved.") },
            ],
            flash: Some(Flash { kind: "ok", text: hostile("Added 3 keys, 1 duplicate.") }),
            version: "0.1.0",
        }
    }

    fn login(prefix: &str, error: bool) -> LoginPage {
        LoginPage {
            prefix: prefix.to_string(),
            csrf: CSRF.to_string(),
            error: error.then(|| hostile("Wrong password.")),
            // The error page also shows the setup form.
            setup: error,
            version: "0.1.0",
        }
    }

    fn password(prefix: &str, forced: bool) -> PasswordPage {
        PasswordPage {
            chrome: Chrome { flash: None, ..chrome(prefix, "password") },
            forced,
            error: Some(hostile("The two new passwords differ.")),
        }
    }

    fn chart(title: &'static str, max_label: &str) -> Chart {
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
            from_label: "-24 h",
            to_label: "now",
        }
    }

    fn overview(prefix: &str) -> OverviewPage {
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
            chrome: chrome(prefix, "overview"),
            keys: vec![
                count("Total", "128"),
                count("Active", "101"),
                count("Limited for some model", "9"),
                count("Invalid", "14"),
                count("Disabled", "4"),
            ],
            windows: vec![window("Last minute", "17"), window("Last hour", "903"), window("Last 24 h", "18,204")],
            error_kinds: vec![
                ErrorKindRow {
                    kind: "rate limited (429)".to_string(),
                    count: "210".to_string(),
                    rate: "1.2%".to_string(),
                },
                ErrorKindRow { kind: hostile("upstream"), count: "3".to_string(), rate: "0.0%".to_string() },
            ],
            calls_chart: chart("Calls per hour", "1,204"),
            tokens_chart: chart("Tokens per hour", "2.4 M"),
            active_requests: "3".to_string(),
            cache_entries: "42".to_string(),
            uptime: "3 d 4 h 12 min".to_string(),
            version: "0.1.0",
            global_backoff: Some("every key got 429: paused until 14:32:10".to_string()),
        }
    }

    fn usage(model: &str, availability: &str, until: &str) -> UsageCell {
        UsageCell {
            model: model.to_string(),
            availability: availability.to_string(),
            until: until.to_string(),
            successes: "48".to_string(),
            failures: "2".to_string(),
            tokens: "120.4 k".to_string(),
        }
    }

    fn key_row(id: u32, state: &'static str) -> KeyRow {
        KeyRow {
            id,
            masked: format!("AIza…X{id:03}"),
            state,
            reason: if state == "invalid" { hostile("API key not valid.") } else { String::new() },
            since: if state == "active" { String::new() } else { "since 2024-05-01 10:12".to_string() },
            usage: if state == "active" {
                vec![
                    usage("gemini-2.5-pro", "ready", ""),
                    usage("gemini-2.5-flash", "cooling", "10:14:05"),
                    usage("gemini-2.0-flash", "over limit", "tomorrow 00:00"),
                ]
            } else {
                Vec::new()
            },
            last_error: if id.is_multiple_of(2) {
                "10:02 gemini-2.5-pro rate limited (HTTP 429)".to_string()
            } else {
                String::new()
            },
            last_used: "10:11:58".to_string(),
            last_validated: if id.is_multiple_of(3) { String::new() } else { "09:00".to_string() },
        }
    }

    fn choice(value: &str, label: &str, selected: bool) -> Choice {
        Choice { value: value.to_string(), label: label.to_string(), selected }
    }

    fn keys(prefix: &str, running: bool) -> KeysPage {
        KeysPage {
            chrome: chrome(prefix, "keys"),
            rows: vec![key_row(1, "active"), key_row(2, "invalid"), key_row(3, "disabled"), key_row(4, "active")],
            page: 2,
            pages: 3,
            previous_page: Some(1),
            next_page: Some(3),
            matching: "128".to_string(),
            total: "130".to_string(),
            query: SCRIPT.to_string(),
            states: vec![
                choice("all", "All states", false),
                choice("active", "Active", true),
                choice("invalid", "Invalid", false),
                choice("disabled", "Disabled", false),
                choice("limited", "Limited", false),
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

    fn setting(name: &'static str, kind: &'static str, value: &str) -> SettingRow {
        SettingRow {
            name,
            description: "What this setting does, in one sentence that may wrap on a phone.",
            kind,
            value: value.to_string(),
            checked: value == "true",
            source: "default".to_string(),
            overridden: false,
            restart_required: false,
            guarded: false,
            error: None,
        }
    }

    fn settings(prefix: &str) -> SettingsPage {
        SettingsPage {
            chrome: Chrome { flash: None, ..chrome(prefix, "settings") },
            groups: vec![
                SettingsGroup {
                    title: "Basic",
                    settings: vec![
                        SettingRow { source: "environment".to_string(), ..setting("PASSWORD", "secret", "") },
                        SettingRow {
                            overridden: true,
                            source: "dashboard".to_string(),
                            error: Some(hostile("must be a whole number from 1 to 20")),
                            ..setting("CONCURRENT_REQUESTS", "number", "abc")
                        },
                        SettingRow { restart_required: true, ..setting("LISTEN_ADDRESS", "text", ATTRIBUTE) },
                        setting("FAKE_STREAMING", "bool", "true"),
                    ],
                },
                SettingsGroup {
                    title: "Features",
                    settings: vec![
                        SettingRow {
                            overridden: true,
                            source: "dashboard".to_string(),
                            ..setting("SEARCH_MODE", "bool", "false")
                        },
                        SettingRow {
                            source: "config file".to_string(),
                            ..setting("BLOCKED_MODELS", "list", "gemini-1.0-pro\ngemini-1.5-flash")
                        },
                    ],
                },
            ],
            error_summary: Some("2 settings have errors.".to_string()),
            guarded_names: "GEMINI_BASE_URL, PROXY_URL".to_string(),
        }
    }

    fn vertex(prefix: &str, problems: bool) -> VertexPage {
        VertexPage {
            chrome: chrome(prefix, "vertex"),
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
                    kind: "express", id: 0, label: "AQ.A…3f9k".to_string(), health: "active".to_string()
                },
                VertexInUseRow {
                    kind: "account",
                    id: 0,
                    label: hostile("gateway@my-project-123456.iam.gserviceaccount.com"),
                    health: "invalid: token grant failed: invalid_grant".to_string(),
                },
            ],
            problems: if problems {
                vec![hostile("GOOGLE_CREDENTIALS_JSON: credential 2: missing field \"project_id\"")]
            } else {
                Vec::new()
            },
        }
    }

    fn log(prefix: &str) -> LogPage {
        let record = |seq: u64, level: &str, source: &str, message: String| LogRow {
            seq,
            time: format!("2024-05-01 10:12:{:02}", seq % 60),
            level: level.to_string(),
            source: source.to_string(),
            message,
        };
        LogPage {
            chrome: Chrome { flash: None, ..chrome(prefix, "log") },
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
                choice("", "All levels", true),
                choice("ERROR", "Error", false),
                choice("WARN", "Warning", false),
                choice("INFO", "Info", false),
            ],
            sources: vec![
                choice("", "All sources", true),
                choice("studio", "studio", false),
                choice("vertex", "vertex", false),
                choice("dashboard", "dashboard", false),
                choice("key checks", "key checks", false),
            ],
            stream_url: format!("{prefix}/log/stream?level=&source="),
            capacity: "1000".to_string(),
        }
    }

    fn message(prefix: &str) -> MessagePage {
        MessagePage {
            chrome: Chrome {
                flash: Some(Flash { kind: "error", text: "Export refused.".to_string() }),
                ..chrome(prefix, "keys")
            },
            title: "Wrong password".to_string(),
            message: hostile("The password is not right; nothing was exported."),
        }
    }

    /// Every page, rendered: (file name, html).
    fn render_all(prefix: &str) -> Vec<(&'static str, String)> {
        let render = |page: &dyn DynRender| page.render_page();
        vec![
            ("login", render(&login(prefix, true))),
            ("login-plain", render(&login(prefix, false))),
            ("password", render(&password(prefix, false))),
            ("password-forced", render(&password(prefix, true))),
            ("overview", render(&overview(prefix))),
            ("keys", render(&keys(prefix, true))),
            ("keys-idle", render(&keys(prefix, false))),
            ("settings", render(&settings(prefix))),
            ("vertex", render(&vertex(prefix, false))),
            ("vertex-problems", render(&vertex(prefix, true))),
            ("log", render(&log(prefix))),
            ("message", render(&message(prefix))),
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
        let html =
            render_all("/admin").into_iter().find(|(n, _)| *n == name).map(|(_, html)| html).expect("page exists");
        html.replace("&#38;", "&amp;")
            .replace("&#60;", "&lt;")
            .replace("&#62;", "&gt;")
            .replace("&#34;", "&quot;")
            .replace("&#39;", "&apos;")
    }

    #[test]
    fn hostile_text_is_only_ever_escaped() {
        for (name, html) in render_all("/admin") {
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
        for (name, html) in render_all("/admin") {
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
        for (name, html) in render_all("/admin") {
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
            (
                "password",
                &["id=\"password-form\"", "id=\"nav\"", "name=\"current\"", "id=\"banner-default-api-password\""],
            ),
            ("overview", &["id=\"nav\"", "id=\"flash\"", "id=\"banner-default-api-password\"", "<polyline"]),
            (
                "keys",
                &[
                    "id=\"keys-add-form\"",
                    "id=\"keys-table\"",
                    "id=\"validation-progress\"",
                    "<progress",
                    "id=\"flash\"",
                ],
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
        for needle in
            ["Calls per hour", "Tokens per hour", "2.4 M", "-24 h", "now", "Last 24 h", "paused until", "3 d 4 h"]
        {
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
        for (name, html) in render_all(PAGES_DIR) {
            std::fs::write(dir.join(format!("{name}.html")), html).unwrap();
        }
    }
}
