//! Anthropic's official `anthropic` Python SDK against the gateway (its
//! base URL pointed at hajimi, hajimi in front of the fake upstream):
//! messages (plain, streamed — real and fake —, a tool round trip),
//! count_tokens, the model list and an authentication error. The SDK
//! lives in the virtualenv of `scripts/sdk-venv.sh` (`HAJIMI_SDK_PYTHON`
//! may name another interpreter). Without it the test says so and passes,
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
async fn the_anthropic_python_sdk_works_against_the_gateway() {
    let Some(python) = sdk_python() else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide the SDK: run scripts/sdk-venv.sh");
        eprintln!("anthropic SDK not installed (scripts/sdk-venv.sh); SDK test skipped");
        return;
    };
    for fake_streaming in [false, true] {
        let app = spawn_app_with(3, |config| {
            config.fake_streaming = fake_streaming;
            config.model_aliases = vec![("claude-*".into(), "gemini-2.5-flash".into())];
        })
        .await;
        app.upstream.answer(|seen, _| {
            let offers_tool = seen.raw.windows(11).any(|window| window == b"get_weather");
            let has_result = seen.raw.windows(16).any(|window| window == b"functionResponse");
            match seen.action.as_str() {
                "countTokens" => Reply::fixture("count-tokens.json"),
                "streamGenerateContent" => Reply::sse_fixture("stream-text.sse", Duration::from_millis(2)),
                _ if offers_tool && !has_result => Reply::fixture("response-function-call.json"),
                _ => Reply::fixture("response-text.json"),
            }
        });
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/anthropic_client.py");
        let address = app.address.clone();
        let python = python.clone();
        let output = actix_web::rt::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .arg(script)
                .env("HAJIMI_BASE_URL", address)
                .env("HAJIMI_PASSWORD", PASSWORD)
                .env("HAJIMI_EXPECT_TEXT", "How can I help you today?")
                .env("HAJIMI_MIN_STREAM_PIECES", if fake_streaming { "1" } else { "2" })
                .env_remove("ANTHROPIC_API_KEY")
                .env_remove("ANTHROPIC_AUTH_TOKEN")
                .env_remove("ANTHROPIC_BASE_URL")
                .output()
                .expect("the SDK driver runs")
        })
        .await
        .unwrap();
        let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "anthropic checks failed (fake streaming {fake_streaming}):\n{report}");
        assert_eq!(report.lines().filter(|line| line.starts_with("ok ")).count(), 6, "{report}");
        // The SDK's requests reached Google under the aliased model.
        let seen = app.upstream.seen();
        let actions: Vec<&str> = seen.iter().map(|seen| seen.action.as_str()).collect();
        let streamed = if fake_streaming { "generateContent" } else { "streamGenerateContent" };
        for action in ["generateContent", streamed, "countTokens"] {
            assert!(actions.contains(&action), "{action} not seen upstream: {actions:?}");
        }
        assert!(seen.iter().filter(|seen| !seen.action.is_empty()).all(|seen| seen.model == "gemini-2.5-flash"));
    }
}
