//! The binary's command line and startup messages: it answers to the
//! original's `uvicorn app.main:app …` (flags with values included), says
//! when `GEMINI_API_KEYS` holds key-like strings it skipped, counts the
//! keys stored by the dashboard, warns when there are none at all, lists
//! its settings in `--help`, reports mistakes in one line (English and
//! Chinese, exit code 2) and imports the original's settings.json.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hajimi::store::sqlite::SqliteStore;
use hajimi::store::{Change, Store};

use crate::helpers::*;

/// Starts the server and returns its stderr up to "listening on port"
/// (at most 20 s), then stops it.
fn startup_log(command: &mut Command) -> String {
    let mut child = command.stderr(Stdio::piped()).spawn().expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        let started = Instant::now();
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let listening = line.contains("listening on port");
            seen.push(line);
            if listening || started.elapsed() > Duration::from_secs(20) {
                break;
            }
        }
        seen
    })
    .join()
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    lines.join("\n")
}

/// The binary with only `env` set, run to its end.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hajimi"));
    command.env_clear().args(args).envs(env.iter().copied());
    command.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh directory under the system's temporary one.
fn scratch_dir(label: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::env::temp_dir().join(format!("hajimi-binary-{label}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[actix_rt::test]
async fn uvicorn_flags_with_values_are_accepted_and_skipped_keys_are_reported() {
    let upstream = FakeUpstream::start().await;
    let keys = format!("{},AIzaTooShort", test_key(1));
    let settings = [("GEMINI_API_KEYS", keys.as_str()), ("ENABLE_STORAGE", "false"), ("RUST_LOG", "info")];
    let (mut command, port) = hajimi_process(&upstream, &settings);
    let port_text = port.to_string();
    command.args([
        "app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        &port_text,
        "--workers",
        "2",
        "--log-level",
        "info",
    ]);
    let log = startup_log(&mut command);
    assert!(log.contains("listening on port"), "the uvicorn command line starts the server:\n{log}");
    assert!(log.contains("1 AI Studio keys (1 from GEMINI_API_KEYS, 0 added in the dashboard)"), "{log}");
    assert!(log.contains("1 string(s) that start like a key but are not one"), "{log}");
    assert!(!log.contains("AIzaTooShort"), "the skipped string is not echoed");
    assert!(!log.contains("NO KEYS"), "{log}");
}

#[actix_rt::test]
async fn keys_added_in_the_dashboard_are_counted_and_none_at_all_is_a_loud_warning() {
    let upstream = FakeUpstream::start().await;
    // Two keys added in the dashboard earlier (one of them also deleted).
    let dir = scratch_dir("keys");
    let store = SqliteStore::open(&dir).unwrap();
    store.apply(&[Change::AddKeys(vec![test_key(2), test_key(3), test_key(4)])]).unwrap();
    store.apply(&[Change::SetKeyAction { key: test_key(4), action: Some(hajimi::store::KeyAction::Deleted) }]).unwrap();
    drop(store);
    let storage_dir = dir.display().to_string();
    let settings = [("GEMINI_API_KEYS", ""), ("STORAGE_DIR", storage_dir.as_str()), ("RUST_LOG", "info")];
    let log = startup_log(&mut hajimi_process(&upstream, &settings).0);
    assert!(log.contains("2 AI Studio keys (0 from GEMINI_API_KEYS, 2 added in the dashboard)"), "{log}");
    assert!(!log.contains("NO KEYS"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();

    // Nothing anywhere: said loudly, in both languages. A variable of the
    // original this version does not use is named too.
    let settings = [("GEMINI_API_KEYS", ""), ("ENABLE_STORAGE", "false"), ("INVALID_API_KEYS", "x")];
    let log = startup_log(&mut hajimi_process(&upstream, &settings).0);
    assert!(log.contains("0 AI Studio keys"), "{log}");
    let warning = log.lines().find(|line| line.contains("NO KEYS")).unwrap_or_else(|| panic!("{log}"));
    assert!(warning.contains("chat answers 503 until keys are added"), "{warning}");
    assert!(warning.contains("GEMINI_API_KEYS") && warning.contains("Keys page"), "{warning}");
    assert!(warning.contains("没有任何 key") && warning.contains("503"), "{warning}");
    assert!(
        log.contains(
            "INVALID_API_KEYS (environment) is a setting of the original hajimi that this version does not use"
        ),
        "{log}"
    );
}

#[test]
fn help_lists_the_main_settings_and_where_the_docs_are() {
    let output = run(&["--help"], &[]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for name in [
        "PASSWORD",
        "WEB_PASSWORD",
        "GEMINI_API_KEYS",
        "HUGGINGFACE",
        "STORAGE_DIR",
        "ENABLE_VERTEX",
        "GOOGLE_CREDENTIALS_JSON",
        "REDIS_URL",
        "TZ",
        "DASHBOARD_LANG",
    ] {
        let listed = help.lines().any(|line| line.trim_start().starts_with(&format!("{name} ")));
        assert!(listed, "{name} has a line of its own:\n{help}");
    }
    assert!(help.contains("docs/en/settings.md (docs/zh/settings.md 中文)"), "{help}");
}

#[test]
fn a_mistake_on_the_command_line_is_one_line_in_both_languages_and_exit_code_2() {
    for (args, en, zh) in [
        (&["--foo"][..], "unknown argument \"--foo\"", "未知参数 \"--foo\""),
        (&["--port"][..], "--port needs a value", "--port 需要一个值"),
    ] {
        let output = run(args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&output.stdout), "", "no usage text");
        let stderr = text(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&format!("hajimi: {en} (hajimi --help lists them) / {zh}")), "{stderr}");
    }
}

#[test]
fn a_config_error_is_in_both_languages_blames_what_was_set_and_exits_2() {
    let cases = [
        (
            "PORT",
            "seventy",
            "hajimi: invalid value for PORT: \"seventy\" (expected a port number from 0 to 65535) / \
             PORT 的值无效：\"seventy\"（应为 0 到 65535 之间的端口号）",
        ),
        ("PASSWORD", "", "hajimi: invalid value for PASSWORD: empty ("),
        ("MAX_REQUEST_BODY_MB", "200", "hajimi: invalid value for MAX_REQUEST_BODY_MB: \"200\" (at most a third of"),
    ];
    for (name, value, expected) in cases {
        let output = run(&[], &[(name, value), ("ENABLE_STORAGE", "false")]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let stderr = text(&output.stderr);
        assert!(stderr.starts_with(expected), "{name}: {stderr}");
        assert!(stderr.contains(&format!("/ {name} 的值无效：")), "{stderr}");
    }
    // A misspelt key of the config file: the file named, the setting meant.
    let dir = scratch_dir("config");
    let path = dir.join("hajimi.toml");
    std::fs::write(&path, "pasword = \"x\"\nfake_streaming_chunk_size = 10\n").unwrap();
    let output = run(&["--config", &path.display().to_string()], &[("ENABLE_STORAGE", "false")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("unknown setting \"pasword\" in {} (did you mean PASSWORD?)", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("是不是想写 PASSWORD"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn import_settings_stores_only_valid_values_that_differ_from_those_in_force() {
    let dir = scratch_dir("import");
    let storage_dir = dir.join("data");
    let file = dir.join("old-hajimi.json");
    let original = serde_json::json!({
        "FAKE_STREAMING": true,
        "MAX_RETRY_NUM": 20,
        "CONCURRENT_REQUESTS": 2,
        "PORT": "seventy",
        "GEMINI_API_KEYS": format!("{},{}", test_key(1), test_key(2)),
        "search": {"search_mode": true, "search_prompt": "（使用搜索工具联网搜索，需要在content中结合搜索内容）"},
        "version": {"local_version": "0.0.5"},
    });
    std::fs::write(&file, original.to_string()).unwrap();
    let storage = storage_dir.display().to_string();
    let key_one = test_key(1);
    // MAX_RETRY_NUM=20 and the first key are in the environment already.
    let env = [("STORAGE_DIR", storage.as_str()), ("MAX_RETRY_NUM", "20"), ("GEMINI_API_KEYS", key_one.as_str())];
    let output = run(&["import-settings", &file.display().to_string()], &env);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("(3): CONCURRENT_REQUESTS, GEMINI_API_KEYS, SEARCH_MODE"), "{stdout}");
    assert!(stdout.contains("(3): FAKE_STREAMING, MAX_RETRY_NUM, SEARCH_PROMPT"), "{stdout}");
    assert!(stdout.contains(": 1 (1 already configured"), "{stdout}");
    assert!(stdout.contains("  PORT: invalid: expected a port number"), "{stdout}");
    assert!(!stdout.contains("seventy") && !stdout.contains(&key_one), "values are never printed");

    let snapshot = SqliteStore::open(&storage_dir).unwrap().load().unwrap();
    let stored: Vec<(&str, &str)> =
        snapshot.setting_overrides.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    assert_eq!(stored, [("CONCURRENT_REQUESTS", "2"), ("SEARCH_MODE", "true")]);
    assert_eq!(snapshot.added_keys, [test_key(2)]);

    // A file that is not JSON is named as it is.
    std::fs::write(&file, "not json").unwrap();
    let output = run(&["import-settings", &file.display().to_string()], &env);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("{} is not valid JSON", file.display())), "{stderr}");
    assert!(!stderr.contains("settings.json"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
