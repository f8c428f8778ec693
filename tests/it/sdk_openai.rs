//! OpenAI's official `openai` Python SDK against the Responses door (its
//! base URL pointed at hajimi's `/v1`, hajimi in front of the fake
//! upstream, real streams): create, stream (raw events and the SDK's
//! accumulating helper), a function-tool round trip through
//! `previous_response_id` against Gemini 3's signature check, retrieve,
//! input items and delete, and a wrong key as `AuthenticationError`. The
//! SDK lives in the virtualenv of `scripts/sdk-venv.sh` (or
//! `HAJIMI_SDK_PYTHON`); without it the test says so and passes, except
//! under CI, where it fails.

use std::path::PathBuf;
use std::time::Duration;

use crate::helpers::*;

fn sdk_python() -> Option<PathBuf> {
    let configured = std::env::var_os("HAJIMI_SDK_PYTHON").map(PathBuf::from);
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv/bin/python");
    configured.or(Some(default)).filter(|path| path.exists())
}

#[actix_rt::test]
async fn the_openai_python_sdk_works_against_the_responses_door() {
    let Some(python) = sdk_python() else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide the SDK: run scripts/sdk-venv.sh");
        eprintln!("openai SDK not installed (scripts/sdk-venv.sh); SDK test skipped");
        return;
    };
    let app = spawn_app_with(3, |config| config.fake_streaming = false).await;
    app.upstream.answer(|seen, _| {
        if let Some(refused) = refuse_unsigned_tool_turns(seen, &FIXTURE_SIGNATURES) {
            return refused;
        }
        let offers_tools = seen.body.get("tools").is_some();
        let answered = seen.raw.windows(16).any(|window| window == b"functionResponse");
        match seen.action.as_str() {
            "streamGenerateContent" => Reply::sse_fixture("stream-text.sse", Duration::from_millis(2)),
            _ if offers_tools && !answered => Reply::fixture("response-function-call.json"),
            _ => Reply::fixture("response-text.json"),
        }
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/openai_responses_client.py");
    let address = app.address.clone();
    let output = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .env("HAJIMI_BASE_URL", address)
            .env("HAJIMI_PASSWORD", PASSWORD)
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .output()
            .expect("the SDK driver runs")
    })
    .await
    .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "openai SDK checks failed:\n{report}");
    assert_eq!(report.lines().filter(|line| line.starts_with("ok ")).count(), 6, "{report}");
    // Every tool follow-up was accepted by the first call (no refused signature).
    let refused = app
        .upstream
        .generation_calls()
        .iter()
        .filter(|seen| refuse_unsigned_tool_turns(seen, &FIXTURE_SIGNATURES).is_some())
        .count();
    assert_eq!(refused, 0);
}
