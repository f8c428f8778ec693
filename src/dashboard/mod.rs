//! The operator's dashboard (§3.2, §9): server-rendered pages behind a
//! password session. `docs/DASHBOARD.md` is the contract (routes, forms,
//! element ids); `views.rs` holds one askama struct per page, `pages/`
//! the handlers (one file per page), `settings.rs` the Settings catalogue, `text.rs` every
//! word in English and Chinese, `format.rs` times and numbers, `assets.rs`
//! the embedded CSS/JS/icon. Sessions and the dashboard password are state
//! below the pages (`crate::operator`).

pub mod assets;
pub mod format;
pub mod pages;
pub mod settings;
pub mod text;
pub mod views;

pub use pages::configure;
