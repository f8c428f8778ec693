//! Browser tests (`make e2e`): the real app in front of the fake upstream
//! (the `tests/it` harness), driven by a headless Chromium over WebDriver
//! as an operator would use the dashboard. They need Debian's `chromium`
//! and `chromium-driver`; `make e2e` installs them when missing, and
//! without them these tests fail (they never pass silently).
//!
//! Screenshots of every page at phone and desktop widths land in
//! `target/e2e-screenshots/` for people to look at; nothing is asserted
//! on them.

#[path = "../it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod browser;
mod framed;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hajimi::secret::{ApiKey, Secret};
use serde_json::Value;

use crate::browser::Browser;
use crate::helpers::*;

const NEW_PASSWORD: &str = "a-much-better-password";

/// A fresh directory for the app's store, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let path = std::env::temp_dir().join(format!("hajimi-e2e-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Full-page PNGs of the current page at a phone and a desktop width.
async fn screenshot(browser: &Browser, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for width in [390, 1280] {
        browser.screenshot_full(width, &dir.join(format!("{name}-{width}.png"))).await;
    }
}

/// Whether `text` says `count` next to `word` in one clause ("2 added",
/// "added: 2", "1 duplicate").
fn says(text: &str, count: usize, word: &str) -> bool {
    let text = text.to_lowercase();
    text.split(['.', ',', ';', '\n', '(', ')']).any(|clause| {
        clause.contains(word)
            && clause
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .any(|n| n.parse::<usize>() == Ok(count))
    })
}

/// Checks whose failure does not stop the walk: each is reported when it
/// fails, and the test fails at the end if any did, so one wrong message
/// does not hide what the later pages do.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let what = what();
            eprintln!("e2e check failed: {what}");
            self.0.push(what);
        }
    }
}

/// The flash after a form was sent: present (or the test stops), and not
/// an error.
async fn flash(browser: &Browser, findings: &mut Findings, after: &str) -> String {
    let flash = browser.find("#flash").await;
    let text = flash.text().await;
    let class = flash.attr("class").await.unwrap_or_default();
    findings.check(!text.trim().is_empty(), || format!("{after}: the flash is empty"));
    findings.check(!class.contains("error"), || format!("{after}: the flash is an error: {text}"));
    text
}

#[actix_web::test]
async fn browser_reaches_the_app() {
    let app = spawn_app_with(0, |_| {}).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/health", app.address)).await;
    let body = browser.execute("return document.body.innerText", vec![]).await;
    let health: Value = serde_json::from_str(body.as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("/health in the browser is not JSON ({e}): {body}"));
    assert_eq!(health["status"], "ok", "{health}");
    browser.close().await;
}

#[actix_web::test]
async fn an_operator_walks_through_the_dashboard() {
    // The log page reads the process's log ring, which the app's logger fills.
    hajimi::telemetry::init_logging();
    let storage = TempDir::new("store");
    let storage_dir = storage.0.clone();
    let app = spawn_app_with(0, move |config| {
        config.enable_storage = true;
        config.storage_dir = storage_dir;
        // The original's default: counts as no dashboard password.
        config.web_password = Secret::new("123");
    })
    .await;
    let base = app.address.clone();
    let browser = Browser::start().await;
    let mut findings = Findings::default();

    // a. Anonymous: / leads to the login page, which asks for the setup
    //    code printed at startup (no dashboard password is set); the API
    //    password and the old default are refused.
    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.path().await, "/login", "an anonymous visit to / must land on /login");
    browser.find("#login-setup-code").await;
    let login_source = browser.source().await;
    findings.check(!login_source.contains("class=\"banner"), || "the login page shows a banner to anyone".into());
    screenshot(&browser, "login-setup").await;
    browser.fill("#login-form", "setup_code", "123").await;
    browser.submit("#login-form").await;
    assert_eq!(browser.path().await, "/login", "the old default opened the dashboard");
    browser.find("#login-error").await;
    let code = app.app.dashboard.password.setup_code().expect("a setup code");
    browser.fill("#login-form", "setup_code", &code).await;
    browser.submit("#login-form").await;

    // b. The setup code leads to the password page, and only to it.
    assert_eq!(browser.path().await, "/password", "the setup code must lead to /password");
    browser.goto(&format!("{base}/keys")).await;
    assert_eq!(browser.path().await, "/password", "nothing but /password is shown until a password is set");
    screenshot(&browser, "password").await;
    browser.fill("#password-form", "new_password", NEW_PASSWORD).await;
    browser.fill("#password-form", "confirm", NEW_PASSWORD).await;
    browser.submit("#password-form").await;
    let path = browser.path().await;
    assert_ne!(path, "/login", "changing the password ended this session (DASHBOARD.md: 303 → P/ with flash)");
    assert_ne!(path, "/password", "the new password was refused: {}", browser.source().await);
    flash(&browser, &mut findings, "password change").await;
    findings.check(app.app.dashboard.password.setup_code().is_none(), || "the setup code still works".into());

    // c. Keys: two new ones, one of them twice, and a line of garbage.
    let (first, second) = (test_key(1), test_key(2));
    assert_eq!(first.len(), 39);
    browser.goto(&format!("{base}/keys")).await;
    browser.fill("#keys-add-form", "keys", &format!("{first}\n{second}\n{first}\nthis line is not a key\n")).await;
    browser.submit("#keys-add-form").await;
    assert_eq!(browser.path().await, "/keys");
    let text = flash(&browser, &mut findings, "adding keys").await;
    findings.check(says(&text, 2, "added"), || format!("adding keys: the flash should say 2 added: {text}"));
    findings.check(says(&text, 1, "duplicate"), || {
        format!("adding keys: the flash should say 1 duplicate (a key pasted twice): {text}")
    });
    let table = browser.find("#keys-table").await.text().await;
    for key in [&first, &second] {
        let masked = ApiKey::new(key.as_str()).masked();
        findings.check(table.contains(&masked), || format!("#keys-table lacks {masked}:\n{table}"));
    }
    let rows = browser
        .execute(
            "return Array.from(document.querySelectorAll('#keys-table tr'))\
               .filter(row => row.textContent.includes('AIza')).length",
            vec![],
        )
        .await;
    findings.check(rows == 2, || format!("#keys-table should show exactly two keys, shows {rows}:\n{table}"));
    let source = browser.source().await;
    findings.check(!source.contains(&first) && !source.contains(&second), || "a full key is in the page source".into());
    screenshot(&browser, "keys").await;

    // d. Settings: MAX_RETRY_NUM becomes a dashboard override, live.
    browser.goto(&format!("{base}/settings")).await;
    browser.fill("#settings-form", "MAX_RETRY_NUM", "7").await;
    browser.submit("#settings-form").await;
    flash(&browser, &mut findings, "saving settings").await;
    let field = browser.find("#settings-form [name=\"MAX_RETRY_NUM\"]").await;
    let value = field.prop("value").await;
    findings.check(value == "7", || format!("MAX_RETRY_NUM shows {value} after saving 7"));
    let row = field
        .execute(
            "const f = arguments[0];\
             return (f.closest('tr, li, fieldset, .setting, .field, div') || f.parentElement).innerText",
        )
        .await;
    let row = row.as_str().unwrap_or_default().to_owned();
    findings.check(row.contains("dashboard"), || format!("MAX_RETRY_NUM should show its source `dashboard`: {row}"));
    let live = app.app.config().max_retry_num;
    findings.check(live == 7, || format!("the app's MAX_RETRY_NUM is {live}, not 7"));
    screenshot(&browser, "settings").await;

    // e. Vertex: a toggle sticks across a reload.
    browser.goto(&format!("{base}/vertex")).await;
    let express = "#vertex-toggles input[type=checkbox][name=\"enable_vertex_express\"]";
    let checkbox = browser.find(express).await;
    if !checkbox.is_selected().await {
        checkbox.click().await;
    }
    browser.submit("#vertex-toggles").await;
    browser.goto(&format!("{base}/vertex")).await;
    browser.refresh().await;
    let ticked = browser.find(express).await.is_selected().await;
    findings.check(ticked, || "enable_vertex_express is not ticked after a reload".into());
    let live = app.app.config().enable_vertex_express;
    findings.check(live, || "the app did not take ENABLE_VERTEX_EXPRESS".into());
    screenshot(&browser, "vertex").await;

    // f. Log: a record made elsewhere shows up live, without a reload.
    browser.goto(&format!("{base}/log")).await;
    browser.find("#log-records").await;
    let count = "return document.querySelectorAll('#log-records li').length";
    let before = browser.execute(count, vec![]).await.as_u64().unwrap_or(0);
    browser.execute("window.__e2eSamePage = true;", vec![]).await;
    // Let the page's live tail connect before the record is made.
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    app.post("/v1/chat/completions", &chat_body(false)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let appeared = loop {
        let found = browser
            .execute(
                "return Array.from(document.querySelectorAll('#log-records li'))\
                   .some(li => li.textContent.includes('/v1/chat/completions'))",
                vec![],
            )
            .await;
        if found == true || Instant::now() > deadline {
            break found == true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    let after = browser.execute(count, vec![]).await.as_u64().unwrap_or(0);
    findings.check(appeared, || {
        format!("no live <li> for the chat request in #log-records within 10 s ({before} → {after} records)")
    });
    findings.check(after > before, || format!("#log-records did not grow ({before} → {after})"));
    let same_page = browser.execute("return window.__e2eSamePage === true", vec![]).await;
    findings.check(same_page == true, || "the log page reloaded instead of appending live".into());
    let seqs = browser
        .execute("return Array.from(document.querySelectorAll('#log-records li')).map(li => li.dataset.seq)", vec![])
        .await;
    let seqs: Vec<u64> =
        seqs.as_array().map(|all| all.iter().filter_map(|s| s.as_str()?.parse().ok()).collect()).unwrap_or_default();
    findings.check(seqs.windows(2).all(|w| w[0] < w[1]), || {
        format!("#log-records is not oldest-first by data-seq: {seqs:?}")
    });
    screenshot(&browser, "log").await;

    // g. The overview, last (the other pages were shot along the way).
    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.path().await, "/");
    browser.find("#nav").await;
    screenshot(&browser, "overview").await;
    findings.check(browser.execute("return document.documentElement.lang", vec![]).await == "en", || {
        "the walk's browser asks for English; the pages should be English".into()
    });

    // h. The same pages in Chinese, through the header's switch: every page
    //    (the language is remembered), a flash, the live log's words, and
    //    screenshots with a `-zh` suffix.
    browser.follow("#lang-switch").await;
    findings.check(browser.path().await == "/", || "the switch should return to the page it was clicked on".into());
    let zh = &hajimi::dashboard::text::ZH;
    let en = &hajimi::dashboard::text::EN;
    for (path, name, chinese, english) in [
        ("/", "overview-zh", zh.overview_active_requests, en.overview_active_requests),
        ("/keys", "keys-zh", zh.validate_all, en.validate_all),
        ("/settings", "settings-zh", zh.settings_save_all, en.settings_save_all),
        ("/vertex", "vertex-zh", zh.vertex_add_account_button, en.vertex_add_account_button),
        ("/log", "log-zh", zh.log_all_levels, en.log_all_levels),
        ("/password", "password-zh", zh.password_save, en.password_save),
    ] {
        if browser.path().await != path {
            browser.goto(&format!("{base}{path}")).await;
        }
        let lang = browser.execute("return document.documentElement.lang", vec![]).await;
        findings.check(lang == "zh", || format!("{path} after switching to Chinese: lang={lang}"));
        let text = browser.execute("return document.body.innerText", vec![]).await;
        let text = text.as_str().unwrap_or_default().to_owned();
        findings.check(text.contains(chinese), || format!("{path} in Chinese lacks {chinese:?}"));
        findings.check(!text.contains(english), || format!("{path} in Chinese still says {english:?}"));
        if path == "/keys" {
            // A flash in Chinese, and a disabled key's badges.
            browser.fill("#keys-add-form", "keys", &test_key(3)).await;
            browser.submit("#keys-add-form").await;
            let text = flash(&browser, &mut findings, "adding a key in Chinese").await;
            findings.check(text.contains("已添加密钥：1 个"), || format!("the flash is not Chinese: {text}"));
            browser.find("#keys-table tbody input[name=\"id\"]").await.click().await;
            browser.follow("#keys-action-form button[value=\"disable\"]").await;
            let text = flash(&browser, &mut findings, "disabling a key in Chinese").await;
            findings.check(text.contains("已停用 1 个密钥"), || format!("the flash is not Chinese: {text}"));
            let badge = browser.find("#keys-table .badge.state-disabled").await.text().await;
            findings.check(badge == zh.badge_disabled, || format!("a disabled key's badge says {badge:?}"));
        }
        if path == "/log" {
            // app.js's words come from the page: Chinese once the tail is live.
            let deadline = Instant::now() + Duration::from_secs(10);
            let live = loop {
                let state = browser.find("#log-live").await.attr("data-state").await.unwrap_or_default();
                if state == "live" || Instant::now() > deadline {
                    break browser.find("#log-live").await.text().await;
                }
                actix_web::rt::time::sleep(Duration::from_millis(200)).await;
            };
            findings.check(live == zh.log_live_on, || format!("#log-live says {live:?}, not {:?}", zh.log_live_on));
        }
        screenshot(&browser, name).await;
    }
    // The header keeps its switch, nav and logout on a phone: nothing is
    // wider than the page (checked at the narrowest window Chromium has;
    // the 390 px screenshots show the phone layout).
    browser.set_window_size(390, 900).await;
    let overflow = browser
        .execute(
            "return Array.from(document.querySelectorAll('header.top, header.top *'))\
               .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)\
               .map(el => el.tagName + '.' + el.className).join(' ')",
            vec![],
        )
        .await;
    browser.set_window_size(1280, 900).await;
    findings.check(overflow == "", || format!("header elements overflow the page: {overflow}"));
    // Logged out, the login page stays Chinese (the cookie).
    browser.submit("#nav form.logout").await;
    findings.check(browser.path().await == "/login", || "logout should lead to /login".into());
    let heading = browser.find("#login-form h2").await.text().await;
    findings.check(heading == zh.login_heading, || format!("the login page after switching says {heading:?}"));
    screenshot(&browser, "login-zh").await;

    browser.close().await;
    assert!(findings.0.is_empty(), "{} check(s) failed:\n- {}", findings.0.len(), findings.0.join("\n- "));
}
