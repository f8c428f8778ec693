//! The user documentation stays true to the code: `docs/en/settings.md` is
//! exactly what `cargo run --example settings_doc` prints, the Chinese
//! settings page lists the same settings, and README's Configuration table
//! names no setting that does not exist. The checks themselves live in
//! `examples/settings_doc/` (included here; the example's `--check` runs
//! them too).

use std::path::Path;

#[path = "../../examples/settings_doc/docs.rs"]
mod generated;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn english_settings_page_is_generated_from_the_code() {
    if let Err(problem) = generated::check_english_settings(root()) {
        panic!("{problem}");
    }
}

#[test]
fn chinese_settings_page_lists_exactly_the_settings() {
    if let Err(problems) = generated::check_chinese_settings(root()) {
        panic!("{problems}");
    }
}

#[test]
fn readme_configuration_table_names_only_settings() {
    if let Err(problems) = generated::check_readme_configuration(root()) {
        panic!("{problems}");
    }
}
