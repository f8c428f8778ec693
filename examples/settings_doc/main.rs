//! Prints `docs/en/settings.md` (every setting, its default, its
//! Settings-page group and whether a change applies live), generated from
//! the code: `cargo run --example settings_doc > docs/en/settings.md`.
//!
//! With `--check` it prints nothing to stdout and instead runs the same
//! drift checks as `tests/it/docs.rs` against this checkout: the English
//! page is up to date, the Chinese page lists exactly the same settings,
//! and README's Configuration table names only settings. Exit code 1 and
//! the problems on stderr when one fails.

use std::path::Path;

// Also compiled into the docs test (`tests/it/docs.rs`), not into the
// server: it reads files of this checkout.
mod docs;

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => print!("{}", docs::render_settings_markdown()),
        ["--check"] => std::process::exit(check(Path::new(env!("CARGO_MANIFEST_DIR")))),
        _ => {
            eprintln!("usage: cargo run --example settings_doc [-- --check]");
            std::process::exit(2);
        }
    }
}

fn check(root: &Path) -> i32 {
    let checks = [
        ("docs/en/settings.md matches the code", docs::check_english_settings(root)),
        ("docs/zh/settings.md lists the same settings", docs::check_chinese_settings(root)),
        ("README's Configuration table names only settings", docs::check_readme_configuration(root)),
    ];
    let mut failed = false;
    for (what, outcome) in checks {
        match outcome {
            Ok(()) => eprintln!("ok    {what}"),
            Err(problems) => {
                failed = true;
                eprintln!("FAIL  {what}");
                for line in problems.lines() {
                    eprintln!("      {line}");
                }
            }
        }
    }
    let ungrouped = docs::ungrouped_settings();
    if !ungrouped.is_empty() {
        eprintln!("note  on no Settings-page group (listed under \"Other\"): {}", ungrouped.join(", "));
    }
    i32::from(failed)
}
