//! The operator's daily life (issue: the dashboard inside the Hugging Face
//! Space page, languages, local time, rough edges).

use hajimi::secret::Secret;

use crate::helpers::{spawn_app_with, TestApp};

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
