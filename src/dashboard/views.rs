//! View models of the dashboard pages: one askama struct per page, each
//! filled by its handler in `pages/` with display-ready text (times
//! formatted, keys masked, numbers grouped), so templates only lay out.
//! Auto-escaping is on for every template; nothing here is marked safe.
//! Every word a page shows comes from its [`Text`] (`chrome.t`, the
//! request's language); templates fill placeholders with `text::fill1`.

use askama::Template;

use super::text;
pub use super::text::Text;

/// A warning shown on every page (`id` is the element id).
#[derive(Debug, Clone)]
pub struct Banner {
    pub id: &'static str,
    pub text: String,
}

pub use crate::operator::session::Flash;

/// What the layout (`base.html`) needs on every page behind the session.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page's strings (its language).
    pub t: &'static Text,
    /// `en` or `zh` (the `lang` attribute).
    pub lang: &'static str,
    /// The language switch's link (`None` when `DASHBOARD_LANG` forces one).
    pub switch_url: Option<String>,
    /// Which zone the page's times are in.
    pub zone_note: String,
    /// Path prefix of the dashboard (`""` or `/admin`); links are
    /// `{{ chrome.prefix }}/keys`.
    pub prefix: String,
    /// The session's CSRF token, for every form.
    pub csrf: String,
    /// The current nav item: `overview`, `keys`, `settings`, `vertex`, `log`
    /// (or `password`).
    pub active: &'static str,
    pub banners: Vec<Banner>,
    pub flash: Option<Flash>,
    pub version: &'static str,
}

impl Chrome {
    /// The name of the current page in the nav (for "Back to …").
    pub fn active_label(&self) -> &'static str {
        match self.active {
            "keys" => self.t.nav_keys,
            "settings" => self.t.nav_settings,
            "vertex" => self.t.nav_vertex,
            "log" => self.t.nav_log,
            "password" => self.t.password_title,
            _ => self.t.nav_overview,
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub t: &'static Text,
    pub lang: &'static str,
    pub switch_url: Option<String>,
    pub prefix: String,
    pub csrf: String,
    pub error: Option<String>,
    /// No dashboard password yet: the form asks for the setup code.
    pub setup: bool,
    pub version: &'static str,
}

#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    pub chrome: Chrome,
    /// The default password is still in use: no `current` field, and the
    /// nav is hidden until a new password is set.
    pub forced: bool,
    pub error: Option<String>,
}

/// One row of a counts table (label, value).
#[derive(Debug, Clone)]
pub struct CountRow {
    pub label: String,
    pub value: String,
}

/// Totals over one window (last minute, hour, 24 h).
#[derive(Debug, Clone)]
pub struct WindowRow {
    pub label: &'static str,
    pub requests: String,
    pub successes: String,
    pub failures: String,
    pub cache_hits: String,
    pub prompt_tokens: String,
    pub completion_tokens: String,
}

/// Failures of one kind over the last 24 h.
#[derive(Debug, Clone)]
pub struct ErrorKindRow {
    pub kind: String,
    pub count: String,
    /// Share of all requests, e.g. `1.5%`.
    pub rate: String,
}

/// A line chart: `points` is an SVG polyline `points` value (numbers only).
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: &'static str,
    pub width: u32,
    pub height: u32,
    pub points: String,
    /// The value at the top of the chart, formatted.
    pub max_label: String,
    /// Left and right ends of the time axis, e.g. `-24 h` and `now`.
    pub from_label: &'static str,
    pub to_label: &'static str,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub chrome: Chrome,
    /// Keys by state: total, active, limited for some model, invalid, disabled.
    pub keys: Vec<CountRow>,
    pub windows: Vec<WindowRow>,
    pub error_kinds: Vec<ErrorKindRow>,
    pub calls_chart: Chart,
    pub tokens_chart: Chart,
    pub active_requests: String,
    pub cache_entries: String,
    pub uptime: String,
    pub version: &'static str,
    /// Set while the whole pool is paused after a storm of 429s.
    pub global_backoff: Option<String>,
}

/// Usage of one model by one key today.
#[derive(Debug, Clone)]
pub struct UsageCell {
    pub model: String,
    /// `ready`, `cooling`, `exhausted`, `over limit`, or the key's own
    /// state when it does not serve (`invalid`, `disabled`, `deleted`):
    /// the CSS hook `data-avail`, never translated.
    pub availability: String,
    /// What the badge says, in the page's language.
    pub availability_label: &'static str,
    /// When the model frees up for this key, if blocked.
    pub until: String,
    pub successes: String,
    pub failures: String,
    pub tokens: String,
}

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: u32,
    /// `AIza…Xy12`.
    pub masked: String,
    /// `active`, `invalid`, `disabled`, `deleted`: the CSS hook
    /// (`state-…`), never translated.
    pub state: &'static str,
    /// What the state badge says, in the page's language.
    pub state_label: &'static str,
    /// Why it is invalid (redacted upstream text), or empty.
    pub reason: String,
    /// When the state began or ends, or empty.
    pub since: String,
    pub usage: Vec<UsageCell>,
    /// The newest error: `time model kind (HTTP n)`, or empty.
    pub last_error: String,
    pub last_used: String,
    pub last_validated: String,
}

/// One option of a `<select>` or filter list.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Debug, Clone)]
pub struct ValidationView {
    pub running: bool,
    pub done: usize,
    pub total: usize,
    pub valid: usize,
    pub invalid: usize,
    /// 0–100.
    pub percent: u32,
}

impl ValidationView {
    /// `Checking: 40 of 130 (30%) · valid 35 · invalid 5` (or the last
    /// run's, or that none ran) in the page's language.
    pub fn status(&self, t: &Text) -> String {
        let template = if self.running {
            t.validation_checking
        } else if self.total > 0 {
            t.validation_last_run
        } else {
            return t.validation_none.to_owned();
        };
        text::fill(
            template,
            &[
                ("done", &self.done),
                ("total", &self.total),
                ("percent", &self.percent),
                ("valid", &self.valid),
                ("invalid", &self.invalid),
            ],
        )
    }
}

#[derive(Debug, Clone)]
pub struct LimitRow {
    pub model: String,
    pub limit: String,
}

#[derive(Template)]
#[template(path = "keys.html")]
pub struct KeysPage {
    pub chrome: Chrome,
    pub rows: Vec<KeyRow>,
    /// 1-based.
    pub page: usize,
    pub pages: usize,
    pub previous_page: Option<usize>,
    pub next_page: Option<usize>,
    /// Keys matching the filter (all pages).
    pub matching: String,
    pub total: String,
    /// The search text as typed (matched against the masked key's visible
    /// characters and the `#id`).
    pub query: String,
    /// `all`, `active`, `invalid`, `disabled`, `limited`.
    pub states: Vec<Choice>,
    /// The current filter as URL query (`q=..&state=..`, URL-encoded) for
    /// paging links.
    pub filter_query: String,
    pub validation: ValidationView,
    pub limits: Vec<LimitRow>,
    pub default_limit: String,
}

/// One setting on the Settings page.
#[derive(Debug, Clone)]
pub struct SettingRow {
    /// The variable name, also the form field name.
    pub name: &'static str,
    /// In the page's language.
    pub description: &'static str,
    /// `bool` (checkbox + hidden "false"), `secret` (password input, empty
    /// = unchanged), `number`, `text`, `list` (textarea).
    pub kind: &'static str,
    /// Current value as text (empty for secrets).
    pub value: String,
    pub checked: bool,
    /// Where the value comes from (default, config file, environment,
    /// dashboard), in the page's language.
    pub source: String,
    /// A dashboard override exists (a "revert" button is shown).
    pub overridden: bool,
    /// Takes effect only after a restart (listen address, workers, storage).
    pub restart_required: bool,
    /// Decides where keys or tokens are sent: saving a change needs the
    /// dashboard password.
    pub guarded: bool,
    /// Inline validation error from the last save attempt.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SettingsGroup {
    /// In the page's language.
    pub title: &'static str,
    pub settings: Vec<SettingRow>,
}

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    pub groups: Vec<SettingsGroup>,
    /// Set when a save was refused: nothing was saved.
    pub error_summary: Option<String>,
    /// The settings whose change needs the password, for the note by the
    /// password field.
    pub guarded_names: String,
}

#[derive(Debug, Clone)]
pub struct ExpressKeyRow {
    pub id: usize,
    pub masked: String,
}

#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub client_email: String,
    pub project_id: String,
}

#[derive(Template)]
#[template(path = "vertex.html")]
pub struct VertexPage {
    pub chrome: Chrome,
    pub enable_vertex: bool,
    pub enable_vertex_express: bool,
    pub express_keys: Vec<ExpressKeyRow>,
    pub credentials: Vec<CredentialRow>,
    /// Every credential in use (settings, files, dashboard) and its health.
    pub in_use: Vec<VertexInUseRow>,
    /// What was wrong with credentials from the settings or files.
    pub problems: Vec<String>,
}

/// A Vertex credential in use.
#[derive(Debug, Clone)]
pub struct VertexInUseRow {
    /// `express` or `account`.
    pub kind: &'static str,
    /// Its id in its pool (for the test action).
    pub id: u32,
    /// Masked Express key, or the account's client email.
    pub label: String,
    /// `active`, `invalid: why`, … in the page's language.
    pub health: String,
}

#[derive(Debug, Clone)]
pub struct LogRow {
    pub seq: u64,
    pub time: String,
    /// `ERROR`, `WARN`, `INFO`.
    pub level: String,
    pub source: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "log.html")]
pub struct LogPage {
    pub chrome: Chrome,
    pub records: Vec<LogRow>,
    pub levels: Vec<Choice>,
    pub sources: Vec<Choice>,
    /// The live tail's URL with the current filters (`{prefix}/log/stream?…`).
    pub stream_url: String,
    pub capacity: String,
}

/// A page for an error met while handling a dashboard request (bad form,
/// wrong password for export…), inside the layout.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
}

#[cfg(test)]
#[path = "views_tests.rs"]
mod tests;
