//! The official `google-genai` Python SDK against the gateway (its base URL
//! pointed at hajimi, hajimi in front of the fake upstream): models list and
//! get, generateContent, SSE streaming, countTokens, embeddings, and the
//! errors it must recognise. The SDK lives in a virtualenv made by
//! `scripts/sdk-venv.sh` (`.ci/run` makes it; `HAJIMI_SDK_PYTHON` may
//! name another interpreter). Without it the test says so and passes,
//! except under CI, where it fails.

use std::path::PathBuf;
use std::time::Duration;

use crate::helpers::*;

fn sdk_python() -> Option<PathBuf> {
    let configured = std::env::var_os("HAJIMI_SDK_PYTHON").map(PathBuf::from);
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv/bin/python");
    configured.or(Some(default)).filter(|path| path.exists())
}

#[actix_rt::test]
async fn the_google_genai_python_sdk_works_against_the_gateway() {
    let Some(python) = sdk_python() else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide the SDK: run scripts/sdk-venv.sh");
        eprintln!("google-genai SDK not installed (scripts/sdk-venv.sh); SDK test skipped");
        return;
    };
    let app = spawn_app_with(3, |config| config.fake_streaming = false).await;
    app.upstream.answer(|seen, _| match seen.action.as_str() {
        "streamGenerateContent" => Reply::sse_fixture("stream-text.sse", Duration::from_millis(2)),
        "countTokens" => Reply::fixture("count-tokens.json"),
        "batchEmbedContents" => Reply::fixture("batch-embed.json"),
        _ if seen.model == "gemini-does-not-exist" => Reply::error(404, "error-404-model-not-found.json"),
        _ => Reply::fixture("response-text.json"),
    });
    // v1beta, and the SDK's default with a base URL (v1, README's example:
    // `GET /v1/models` must answer in Google's shape for it).
    for api_version in ["v1beta", "default"] {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/genai_client.py");
        let address = app.address.clone();
        let python = python.clone();
        let output = actix_web::rt::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .arg(script)
                .env("HAJIMI_API_VERSION", api_version)
                .env("HAJIMI_BASE_URL", address)
                .env("HAJIMI_PASSWORD", PASSWORD)
                .env("HAJIMI_EXPECT_TEXT", "How can I help you today?")
                .env_remove("GOOGLE_API_KEY")
                .env_remove("GEMINI_API_KEY")
                .output()
                .expect("the SDK driver runs")
        })
        .await
        .unwrap();
        let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "google-genai checks failed ({api_version}):\n{report}");
        assert_eq!(report.lines().filter(|line| line.starts_with("ok ")).count(), 8, "{report}");
    }
    // The SDK's requests reached Google as native calls with pool keys.
    let actions: Vec<String> = app.upstream.seen().into_iter().map(|seen| seen.action).collect();
    for action in ["generateContent", "streamGenerateContent", "countTokens", "batchEmbedContents"] {
        assert!(actions.iter().any(|seen| seen == action), "{action} not seen upstream: {actions:?}");
    }
}
