//! User documentation that is generated from the code, and the checks that
//! keep the hand-written documentation in step with it. `docs/en/settings.md`
//! is [`render_settings_markdown`]'s output (`cargo run --example
//! settings_doc > docs/en/settings.md`): every setting of
//! [`config::SETTINGS`] with its default, grouped as on the dashboard's
//! Settings page ([`GROUPS`]), with whether a change there applies at once
//! or after a restart. The drift checks below are run by the integration
//! tests (`tests/it/docs.rs`) and by `cargo run --example settings_doc --
//! --check`; each returns what is wrong, naming the setting.

use std::collections::BTreeSet;
use std::path::Path;

use hajimi::config::{self, SETTINGS};
use hajimi::dashboard::settings::GROUPS;

/// How to bring `docs/en/settings.md` up to date.
pub const REGENERATE_COMMAND: &str = "cargo run --example settings_doc > docs/en/settings.md";

/// Names README's Configuration table may give that are not settings of
/// [`config::SETTINGS`] but are read all the same: the log filter and the
/// config-file path. (The numbered key lists `GEMINI_API_KEYS_1`… are
/// recognised by [`is_known_non_setting`].)
pub const KNOWN_NON_SETTINGS: &[&str] = &["RUST_LOG", "HAJIMI_CONFIG"];

/// The title of the last group: settings that are on no Settings-page group.
const OTHER_GROUP: &str = "Other";

const INTRODUCTION: &str = "\
Every setting hajimi reads, grouped as on the dashboard's Settings page.
Each one can be set as an environment variable (the name as shown), as a
key of the TOML config file (`--config FILE` or `HAJIMI_CONFIG`; keys in any
case) and, when it is on the Settings page, in the dashboard. Layers, lowest
first: default → config file → environment → `--host`/`--port` → dashboard.
A malformed value stops startup with a message naming the setting.

- **default**: the built-in value; — means empty.
- **applies**: when a change saved on the Settings page takes effect: *live*
  (at once) or *after restart*. A change to the environment or the config
  file is read at the next start.
";

const OTHER_INTRODUCTION: &str = "\
Not on the Settings page. AI Studio keys, the Vertex switches and
credentials, and the dashboard password have pages of their own; the rest
are read from the environment or the config file at startup.
";

/// `docs/en/settings.md`, exactly.
pub fn render_settings_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Settings\n\n");
    out.push_str("<!-- Generated from src/config.rs and src/dashboard/settings.rs by `");
    out.push_str(REGENERATE_COMMAND);
    out.push_str("`; do not edit by hand. -->\n\n");
    out.push_str(INTRODUCTION);
    for (group, specs) in GROUPS {
        out.push_str(&format!("\n## {group}\n\n"));
        push_table_header(&mut out);
        for spec in *specs {
            let applies = if spec.restart_required { "after restart" } else { "live" };
            push_row(&mut out, spec.name, default_of(spec.name), applies, spec.description);
        }
    }
    let ungrouped = ungrouped_settings();
    if !ungrouped.is_empty() {
        out.push_str(&format!("\n## {OTHER_GROUP}\n\n"));
        out.push_str(OTHER_INTRODUCTION);
        out.push('\n');
        push_table_header(&mut out);
        for name in ungrouped {
            push_row(&mut out, name, default_of(name), "—", ungrouped_description(name));
        }
    }
    out
}

/// Settings of [`config::SETTINGS`] that are in no group of [`GROUPS`], in
/// the order of `SETTINGS`.
pub fn ungrouped_settings() -> Vec<&'static str> {
    let grouped: BTreeSet<&str> = GROUPS.iter().flat_map(|(_, specs)| specs.iter().map(|spec| spec.name)).collect();
    SETTINGS.iter().map(|(name, _)| *name).filter(|name| !grouped.contains(name)).collect()
}

/// What the settings outside the Settings page mean.
fn ungrouped_description(name: &str) -> &'static str {
    match name {
        "WEB_PASSWORD" => "Dashboard password until one is set on the Password page; never PASSWORD. Empty or 123 = none: the setup code printed on stderr at startup opens the dashboard once, to set one.",
        "GEMINI_API_KEYS" => "AI Studio keys, comma-separated (more on the Keys page).",
        "ENABLE_VERTEX" => "Serve chat through Vertex AI (Vertex page).",
        "ENABLE_VERTEX_EXPRESS" => "Use Vertex Express keys (Vertex page).",
        "GOOGLE_CREDENTIALS_JSON" => "Vertex service-account key file (JSON).",
        "VERTEX_EXPRESS_API_KEY" => "Vertex Express keys, comma-separated.",
        "HTTPS_PROXY" | "ALL_PROXY" | "HTTP_PROXY" => "Outgoing proxy for upstream calls.",
        "REDIS_URL" => "redis:// or rediss:// URL: replicas share keys, key health, settings and sessions there (docs: replicas.md). Empty = one node, state in STORAGE_DIR.",
        "REDIS_CA_FILE" => "PEM file of the CA that signed the rediss:// server's certificate, trusted instead of the bundled roots.",
        _ => "",
    }
}

fn default_of(name: &str) -> &'static str {
    SETTINGS.iter().find(|(known, _)| *known == name).map(|(_, default)| *default).unwrap_or("")
}

fn push_table_header(out: &mut String) {
    out.push_str("| setting | default | applies | meaning |\n");
    out.push_str("|---|---|---|---|\n");
}

fn push_row(out: &mut String, name: &str, default: &str, applies: &str, description: &str) {
    let default = if default.is_empty() { "—".to_owned() } else { code_span(default) };
    out.push_str(&format!("| {} | {default} | {applies} | {} |\n", code_span(name), table_text(description)));
}

/// `text` as inline code inside a table cell: a fence longer than any run
/// of backticks in it, and `|` escaped (GitHub splits cells on it even in
/// code).
fn code_span(text: &str) -> String {
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let padding = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{fence}{padding}{}{padding}{fence}", text.replace('|', "\\|"))
}

/// Plain text inside a table cell: `|` would end the cell and `<name>`
/// would be read as an HTML tag.
fn table_text(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;")
}

/// The names in backticks in the first column of every table row of
/// `markdown` that look like setting names (upper case, digits, `_`).
pub fn table_setting_names(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|line| line.trim().strip_prefix('|'))
        .filter_map(|row| row.split('|').next())
        .flat_map(backticked_names)
        .collect()
}

/// The setting-like names in backticks in the first column of README's
/// Configuration table (its rows may be split over several tables); `None`
/// when README has no `## Configuration` section.
pub fn readme_configuration_names(readme: &str) -> Option<Vec<String>> {
    let start = readme.find("\n## Configuration\n")?;
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map(|end| end + 3).unwrap_or(section.len());
    Some(table_setting_names(&section[..end]))
}

fn backticked_names(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::trim)
        .filter(|name| name.starts_with(|c: char| c.is_ascii_uppercase()))
        .filter(|name| name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
        .map(str::to_owned)
        .collect()
}

/// Read by hajimi without being a setting of [`config::SETTINGS`].
pub fn is_known_non_setting(name: &str) -> bool {
    let numbered_key_list = name
        .strip_prefix("GEMINI_API_KEYS_")
        .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()));
    KNOWN_NON_SETTINGS.contains(&name) || numbered_key_list
}

fn is_setting(name: &str) -> bool {
    config::SETTINGS.iter().any(|(known, _)| *known == name)
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

/// (a) `docs/en/settings.md` under `root` is exactly the rendered markdown.
pub fn check_english_settings(root: &Path) -> Result<(), String> {
    let written = read(&root.join("docs/en/settings.md"))?;
    if written == render_settings_markdown() {
        Ok(())
    } else {
        Err(format!("docs/en/settings.md is out of date: run `{REGENERATE_COMMAND}`"))
    }
}

/// (b) `docs/zh/settings.md` under `root` lists exactly the settings of
/// [`config::SETTINGS`], each once.
pub fn check_chinese_settings(root: &Path) -> Result<(), String> {
    let listed = table_setting_names(&read(&root.join("docs/zh/settings.md"))?);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for name in &listed {
        if !is_setting(name) {
            problems.push(format!("docs/zh/settings.md lists `{name}`, which is not a setting"));
        } else if !seen.insert(name.as_str()) {
            problems.push(format!("docs/zh/settings.md lists `{name}` twice"));
        }
    }
    for (name, _) in SETTINGS {
        if !seen.contains(name) {
            problems.push(format!("docs/zh/settings.md does not list `{name}`"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// (c) every name in README's Configuration table is a setting or a known
/// non-setting.
pub fn check_readme_configuration(root: &Path) -> Result<(), String> {
    let names = readme_configuration_names(&read(&root.join("README.md"))?)
        .ok_or("README.md has no `## Configuration` section")?;
    if names.len() < 10 {
        return Err(format!(
            "README.md's Configuration table: only {} names found; has its layout changed?",
            names.len()
        ));
    }
    let unknown: Vec<String> = names
        .into_iter()
        .filter(|name| !is_setting(name) && !is_known_non_setting(name))
        .map(|name| {
            format!(
                "README.md's Configuration table names `{name}`, which is neither a setting nor a known non-setting"
            )
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(unknown.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_first_column_only() {
        let markdown = "\
| variable | default | meaning |
|---|---|---|
| `PASSWORD` | `123` | see `WEB_PASSWORD` |
| `GEMINI_API_KEYS` (+ `_1`…`_N`) | — | `OFF` |
| `HOST`, `PORT` | `0.0.0.0` | x |
not a row `TZ`
";
        assert_eq!(table_setting_names(markdown), ["PASSWORD", "GEMINI_API_KEYS", "HOST", "PORT"]);
    }

    #[test]
    fn the_configuration_section_ends_at_the_next_heading() {
        let readme = "# t\n\n## Configuration\n\n| `A_B` | x |\n\n| `C` | y |\n\n## Dashboard\n\n| `D` | z |\n";
        assert_eq!(readme_configuration_names(readme).unwrap(), ["A_B", "C"]);
        assert_eq!(readme_configuration_names("# t\n"), None);
    }

    #[test]
    fn cells_are_escaped() {
        assert_eq!(code_span("a|b"), "`a\\|b`");
        assert_eq!(code_span("x`y"), "``x`y``");
        assert_eq!(table_text("under /<name>/"), "under /&lt;name>/");
        assert!(is_known_non_setting("GEMINI_API_KEYS_12"));
        assert!(!is_known_non_setting("GEMINI_API_KEYS_"));
    }

    #[test]
    fn every_setting_is_rendered_once() {
        let rendered = render_settings_markdown();
        let names = table_setting_names(&rendered);
        let expected: Vec<&str> = SETTINGS.iter().map(|(name, _)| *name).collect();
        let mut sorted_names: Vec<&str> = names.iter().map(String::as_str).collect();
        sorted_names.sort_unstable();
        let mut sorted_expected = expected.clone();
        sorted_expected.sort_unstable();
        assert_eq!(sorted_names, sorted_expected);
    }
}
