//! The operator's daily life (issue: the dashboard inside the Hugging Face
//! Space page, languages, local time, rough edges).

use hajimi::secret::Secret;

use crate::dashboard::{anonymous_get, login};
use crate::helpers::{chat_body, spawn_app_with, test_key, TestApp, PASSWORD};

fn set_cookies(answer: &crate::helpers::Answer) -> Vec<String> {
    answer.headers.get_all("set-cookie").filter_map(|value| value.to_str().ok()).map(str::to_owned).collect()
}

async fn login_page(app: &TestApp, headers: &[(&str, &str)]) -> crate::helpers::Answer {
    app.get_with("/login", headers).await
}

#[actix_web::test]
async fn the_dashboard_may_be_framed_by_the_listed_origins_with_cookies_a_frame_gets() {
    // Default: no frames at all, Strict cookies.
    let app = spawn_app_with(1, |_| {}).await;
    let page = login_page(&app, &[]).await;
    assert_eq!(page.headers.get("x-frame-options").unwrap(), "DENY");
    let policy = page.headers.get("content-security-policy").unwrap().to_str().unwrap().to_owned();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(set_cookies(&page).iter().all(|cookie| cookie.contains("SameSite=Strict")));

    // FRAME_ANCESTORS set (HF mode sets huggingface.co by default), behind
    // a proxy that terminated TLS.
    let app = spawn_app_with(1, |config| {
        config.frame_ancestors = vec!["https://huggingface.co".to_owned()];
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        config.web_password = Secret::new("framed-dashboard-pass");
    })
    .await;
    let page = login_page(&app, &[("x-forwarded-proto", "https")]).await;
    let policy = page.headers.get("content-security-policy").unwrap().to_str().unwrap().to_owned();
    assert!(policy.contains("frame-ancestors https://huggingface.co") && !policy.contains("'none'"), "{policy}");
    assert!(page.headers.get("x-frame-options").is_none());
    let cookies = set_cookies(&page);
    assert!(
        cookies.iter().all(|cookie| cookie.contains("SameSite=None")
            && cookie.contains("Secure")
            && cookie.contains("Partitioned")
            && cookie.contains("HttpOnly")),
        "{cookies:?}"
    );
    // Over plain HTTP a None cookie would be refused by browsers: Strict.
    let plain = login_page(&app, &[]).await;
    assert!(set_cookies(&plain).iter().all(|cookie| cookie.contains("SameSite=Strict")));
    // API answers are not touched.
    let health = app.get_with("/health", &[]).await;
    assert!(health.headers.get("content-security-policy").is_none());
}

// ---------------------------------------------------------------- languages

/// The `lang` attribute of a page's root element.
fn page_lang(body: &str) -> &str {
    let marker = "<html lang=\"";
    let start = body.find(marker).map(|at| at + marker.len()).expect("an <html lang> element");
    body[start..].split('"').next().unwrap()
}

/// The language switch's link (`href` of `#lang-switch`), decoded from
/// the page's HTML.
fn switch_link(body: &str) -> Option<String> {
    let at = body.find("id=\"lang-switch\"")?;
    let tag_start = body[..at].rfind('<')?;
    let tag = &body[tag_start..tag_start + body[tag_start..].find('>')?];
    let href = tag.split("href=\"").nth(1)?.split('"').next()?;
    Some(href.replace("&#38;", "&").replace("&amp;", "&"))
}

fn has_cjk(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

const ZH_BROWSER: (&str, &str) = ("accept-language", "zh-CN,zh;q=0.9,en;q=0.8");

#[actix_web::test]
async fn a_browser_asking_for_chinese_gets_chinese_pages() {
    let app = spawn_app_with(1, |_| {}).await;
    let zh = &hajimi::dashboard::text::ZH;
    let en = &hajimi::dashboard::text::EN;
    // The login page, before any session.
    let login_zh = anonymous_get(&app, "/login", &[ZH_BROWSER]).await;
    assert_eq!(page_lang(&login_zh.body), "zh");
    assert!(login_zh.body.contains(zh.login_heading) && !login_zh.body.contains(en.login_heading));
    let login_en = anonymous_get(&app, "/login", &[("accept-language", "en-US,en;q=0.9")]).await;
    assert_eq!(page_lang(&login_en.body), "en");
    assert!(login_en.body.contains(en.login_heading));
    // Every page behind the session.
    let mut dashboard = login(&app, PASSWORD).await.ok().expect("login");
    dashboard.extra_headers.push((ZH_BROWSER.0.to_owned(), ZH_BROWSER.1.to_owned()));
    let words = [
        ("/", zh.overview_active_requests, en.overview_active_requests),
        ("/keys", zh.validate_all, en.validate_all),
        ("/settings", zh.settings_save_all, en.settings_save_all),
        ("/vertex", zh.vertex_add_account_button, en.vertex_add_account_button),
        ("/log", zh.log_all_levels, en.log_all_levels),
        ("/password", zh.password_save, en.password_save),
    ];
    for (path, chinese, english) in words {
        let page = dashboard.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(page_lang(&page.body), "zh", "{path}");
        assert!(page.body.contains(chinese), "{path}: {chinese:?} missing");
        assert!(!page.body.contains(english), "{path}: English {english:?} on a Chinese page");
        assert!(page.body.contains(zh.log_out) && page.body.contains("时间按 UTC 显示"), "{path}: the layout");
    }
    // The setting descriptions and group titles are Chinese too.
    let settings = dashboard.get("/settings").await.body;
    assert!(settings.contains("每个请求最多尝试上游几次。") && settings.contains("流式与重试"));
    // A plain-text refusal is in the request's language too.
    let forged = dashboard.post_raw("/keys/validate-all", &[("csrf", "wrong")]).await;
    assert_eq!((forged.status, forged.body.as_str()), (403, zh.error_csrf));
}

#[actix_web::test]
async fn the_language_switch_remembers_the_choice_and_returns_to_the_same_page() {
    let app = spawn_app_with(1, |_| {}).await;
    let mut dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let english = dashboard.get("/keys?state=disabled&q=%23").await;
    assert_eq!(page_lang(&english.body), "en");
    let link = switch_link(&english.body).expect("#lang-switch on the page");
    assert!(link.starts_with("/lang?to=zh&"), "{link}");
    let switched = dashboard.get(&link).await;
    assert_eq!(switched.status, 303);
    assert_eq!(switched.location, "/keys?state=disabled&q=%23", "back to the page it was clicked on");
    let cookie = switched.set_cookies.iter().find(|c| c.starts_with("hajimi_lang=")).expect("the language cookie");
    assert!(cookie.starts_with("hajimi_lang=zh;") && cookie.contains("Path=/"), "{cookie}");
    // A browser sends it back: the same page, now Chinese, even where the
    // browser itself asks for English.
    dashboard.extra_cookies.push("hajimi_lang=zh".to_owned());
    dashboard.extra_headers.push(("accept-language".to_owned(), "en-US".to_owned()));
    let chinese = dashboard.get(&switched.location).await;
    assert_eq!(page_lang(&chinese.body), "zh");
    assert!(chinese.body.contains(hajimi::dashboard::text::ZH.state_disabled));
    let back = switch_link(&chinese.body).expect("the switch back");
    assert!(back.starts_with("/lang?to=en&"), "{back}");
    // The switch works without a session too (the login page has it).
    let login_page = anonymous_get(&app, "/login", &[]).await;
    assert_eq!(switch_link(&login_page.body).as_deref(), Some("/lang?to=zh&back=%2Flogin"));
    // Never off the dashboard: another site, a scheme-relative URL, a
    // backslash trick or the switch itself lead to the Overview.
    for back in [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "/lang?to=en&back=//evil.example",
        "",
    ] {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("to", "zh")
            .append_pair("back", back)
            .finish();
        let answer = anonymous_get(&app, &format!("/lang?{query}"), &[]).await;
        assert_eq!((answer.status, answer.location.as_str()), (303, "/"), "back={back}");
    }
    let raw = anonymous_get(&app, "/lang?to=zh&back=//evil.example", &[]).await;
    assert_eq!(raw.location, "/");
    // An unknown language sets nothing.
    let unknown = anonymous_get(&app, "/lang?to=fr&back=/keys", &[]).await;
    assert!(unknown.set_cookies.iter().all(|c| !c.starts_with("hajimi_lang=")), "{:?}", unknown.set_cookies);
}

#[actix_web::test]
async fn the_switch_stays_under_the_dashboard_prefix() {
    let app = spawn_app_with(1, |config| config.dashboard_prefix = "/admin".to_owned()).await;
    for (back, expected) in [
        ("/admin/keys", "/admin/keys"),
        ("/admin", "/admin"),
        ("/v1/models", "/admin/"),
        ("/adminx", "/admin/"),
        ("https://evil.example/admin/keys", "/admin/"),
    ] {
        let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("back", back).finish();
        let answer = anonymous_get(&app, &format!("/admin/lang?to=zh&{query}"), &[]).await;
        assert_eq!((answer.status, answer.location.as_str()), (303, expected), "back={back}");
        let cookie = answer.set_cookies.iter().find(|c| c.starts_with("hajimi_lang=")).expect("cookie");
        assert!(cookie.contains("Path=/admin"), "{cookie}");
    }
}

#[actix_web::test]
async fn dashboard_lang_forces_one_language_and_hides_the_switch() {
    let app = spawn_app_with(1, |config| config.dashboard_lang = Some(hajimi::i18n::Lang::Zh)).await;
    let login_page = anonymous_get(&app, "/login", &[("accept-language", "en-US"), ("cookie", "hajimi_lang=en")]).await;
    assert_eq!(page_lang(&login_page.body), "zh");
    assert!(!login_page.body.contains("id=\"lang-switch\""));
    let mut dashboard = login(&app, PASSWORD).await.ok().expect("login");
    dashboard.extra_cookies.push("hajimi_lang=en".to_owned());
    dashboard.extra_headers.push(("accept-language".to_owned(), "en-US,en;q=0.9".to_owned()));
    for path in ["/", "/keys", "/settings", "/vertex", "/log", "/password"] {
        let page = dashboard.get(path).await;
        assert_eq!(page_lang(&page.body), "zh", "{path}: DASHBOARD_LANG=zh beats the cookie and the browser");
        assert!(!page.body.contains("id=\"lang-switch\""), "{path}: a switch that cannot switch");
        assert!(!page.body.contains("/lang?"), "{path}");
    }
    // English forced the same way.
    let app = spawn_app_with(1, |config| config.dashboard_lang = Some(hajimi::i18n::Lang::En)).await;
    let page = anonymous_get(&app, "/login", &[ZH_BROWSER, ("cookie", "hajimi_lang=zh")]).await;
    assert_eq!(page_lang(&page.body), "en");
    assert!(!has_cjk(&page.body) && !page.body.contains("id=\"lang-switch\""));
}

#[actix_web::test]
async fn flashes_and_errors_are_in_the_sessions_language() {
    let app = spawn_app_with(1, |_| {}).await;
    let mut dashboard = login(&app, PASSWORD).await.ok().expect("login");
    dashboard.extra_cookies.push("hajimi_lang=zh".to_owned());
    let (a, b) = (test_key(200), test_key(201));
    let pasted = format!("{a}\n{b}\n{a}\nAIzaTooShort");
    let added = dashboard.follow(dashboard.post("/keys/add", &[("keys", &pasted)]).await).await;
    let flash = added.body.split("id=\"flash\"").nth(1).expect("a flash").split("</div>").next().unwrap().to_owned();
    assert!(flash.contains("已添加密钥：2 个"), "{flash}");
    assert!(flash.contains("跳过 1 个重复的密钥"), "{flash}");
    assert!(flash.contains("1 个字符串像密钥但格式不对"), "{flash}");
    assert!(!flash.contains("added") && !flash.contains(" / "), "{flash}");
    // An inline validation error: only the page language's half of
    // config.rs's "English / 中文" reason.
    let invalid = dashboard.post("/settings", &[("MAX_RETRY_NUM", "0")]).await;
    assert_eq!(invalid.status, 400);
    let error =
        invalid.body.split("id=\"err-MAX_RETRY_NUM\">").nth(1).expect("inline error").split("</p>").next().unwrap();
    assert!(has_cjk(error) && !error.contains(" / "), "{error}");
    // The same error in English has no Chinese.
    dashboard.extra_cookies = vec!["hajimi_lang=en".to_owned()];
    let invalid = dashboard.post("/settings", &[("MAX_RETRY_NUM", "0")]).await;
    let error = invalid.body.split("id=\"err-MAX_RETRY_NUM\">").nth(1).unwrap().split("</p>").next().unwrap();
    assert!(!has_cjk(error) && !error.is_empty(), "{error}");
}

#[actix_web::test]
async fn a_disabled_keys_usage_says_disabled_not_ready() {
    let app = spawn_app_with(1, |_| {}).await;
    // A request gives the key a model with usage today.
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    let mut dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let before = dashboard.get("/keys").await.body;
    assert!(before.contains("data-avail=\"ready\">ready<"), "an active key is ready");
    let id = app.app.pool.id_of(&hajimi::secret::ApiKey::new(test_key(0).as_str())).unwrap().0.to_string();
    let disabled = dashboard.post("/keys/action", &[("action", "disable"), ("id", &id)]).await;
    assert_eq!(disabled.status, 303);
    let page = dashboard.get("/keys").await.body;
    assert!(page.contains("data-avail=\"disabled\">disabled<"), "the usage badge says disabled");
    assert!(!page.contains("data-avail=\"ready\"") && !page.contains(">ready<"), "nothing says ready");
    dashboard.extra_cookies.push("hajimi_lang=zh".to_owned());
    let page = dashboard.get("/keys").await.body;
    let zh = &hajimi::dashboard::text::ZH;
    assert!(page.contains(&format!("data-avail=\"disabled\">{}<", zh.badge_disabled)), "in Chinese: its label");
    assert!(page.contains(&format!("class=\"badge state-disabled\">{}<", zh.badge_disabled)));
    assert!(!page.contains(zh.avail_ready));
}

#[actix_web::test]
async fn the_originals_settings_json_can_be_imported_on_the_settings_page() {
    let app = spawn_app_with(1, |config| config.web_password = Secret::new("import-page-pass")).await;
    let dashboard = login(&app, "import-page-pass").await.ok().expect("login");
    let page = dashboard.get("/settings").await;
    assert!(page.body.contains("id=\"settings-import-form\"") && page.body.contains("name=\"settings_json\""));
    let settings = serde_json::json!({
        "MAX_RETRY_NUM": 9,
        "FAKE_STREAMING": true,
        "CONCURRENT_REQUESTS": "zero",
        "SOMETHING_ELSE": 1,
        "WEB_PASSWORD": "from-the-file",
        "search": {"search_mode": true},
        "GEMINI_API_KEYS": format!("{},{}", test_key(40), test_key(0)),
    })
    .to_string();
    let imported = dashboard.follow(dashboard.post("/settings/import", &[("settings_json", &settings)]).await).await;
    let flash =
        imported.body.split("id=\"flash\"").nth(1).unwrap_or_default().split("</div>").next().unwrap_or_default();
    assert!(flash.contains("MAX_RETRY_NUM") && flash.contains("SEARCH_MODE"), "{flash}");
    assert!(flash.contains("1 AI Studio key"), "{flash}");
    for skipped in ["CONCURRENT_REQUESTS", "SOMETHING_ELSE", "WEB_PASSWORD"] {
        assert!(flash.contains(skipped), "{skipped} not named as skipped: {flash}");
    }
    assert!(!flash.contains("from-the-file"), "values are not echoed");
    let config = app.app.config();
    assert_eq!((config.max_retry_num, config.search_mode), (9, true));
    // The default FAKE_STREAMING=true is not stored (env changes later are not shadowed).
    let overrides = app.app.settings.lock().overrides.clone();
    assert!(!overrides.contains_key("FAKE_STREAMING") && overrides.contains_key("MAX_RETRY_NUM"), "{overrides:?}");
    assert!(app.app.pool.id_of(&hajimi::secret::ApiKey::new(test_key(40))).is_some());
    // Where keys go needs the password here too.
    let relay = serde_json::json!({"GEMINI_BASE_URL": "https://collector.example"}).to_string();
    let refused = dashboard.follow(dashboard.post("/settings/import", &[("settings_json", &relay)]).await).await;
    assert!(refused.body.contains("class=\"flash error\""), "{}", refused.body);
    assert_ne!(app.app.config().gemini_base_url, "https://collector.example");
    let confirmed = dashboard
        .post("/settings/import", &[("settings_json", &relay), ("confirm_password", "import-page-pass")])
        .await;
    assert_eq!(confirmed.status, 303);
    assert_eq!(app.app.config().gemini_base_url, "https://collector.example");
}
