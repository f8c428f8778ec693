//! Every word the dashboard shows, in English and Chinese: one table,
//! compiled in. Each entry names a string and gives both languages, so a
//! string in one language only does not compile; [`Text`] is a struct with
//! one field per entry and [`text`] gives the one of a language. Templates
//! read `t.<name>` (`chrome.t` on pages behind the session); handlers build
//! flashes and errors with [`fill`], which puts values into `{name}`
//! placeholders (both languages must have the same ones — a test checks).
//!
//! Which language a request gets: `DASHBOARD_LANG` when set, else the
//! `hajimi_lang` cookie the page's switch sets, else `Accept-Language`
//! (Chinese for `zh*`), else English ([`lang_of`]).

use actix_web::HttpRequest;

pub use crate::i18n::Lang;

/// The cookie the language switch sets.
pub const LANG_COOKIE: &str = "hajimi_lang";

macro_rules! strings {
    ($($name:ident: $en:literal, $zh:literal;)*) => {
        /// Every dashboard string of one language.
        #[derive(Debug)]
        pub struct Text {
            $(pub $name: &'static str,)*
        }

        pub static EN: Text = Text { $($name: $en,)* };
        pub static ZH: Text = Text { $($name: $zh,)* };

        /// (name, English, Chinese) of every string, for the tests.
        pub const ALL: &[(&str, &str, &str)] = &[$((stringify!($name), $en, $zh),)*];
    };
}

strings! {
    // ---- layout
    lang_name: "English", "中文";
    switch_language: "中文", "English";
    switch_language_title: "切换到中文", "Switch to English";
    nav_label: "Dashboard", "控制台";
    nav_overview: "Overview", "概览";
    nav_keys: "Keys", "密钥";
    nav_settings: "Settings", "设置";
    nav_vertex: "Vertex", "Vertex";
    nav_log: "Log", "日志";
    log_out: "Log out", "退出登录";
    change_dashboard_password: "Change the dashboard password", "修改面板密码";
    // ---- banners (every page behind the session)
    banner_default_api_password: "The API PASSWORD is still the default \"123\": anyone can use this gateway. Change it in Settings.", "API 密码 PASSWORD 仍是默认的“123”：任何人都能使用这个网关。请在“设置”页修改。";
    banner_redis_away: "Shared state: Redis at {endpoint} is unreachable. This replica serves from its own view; {pending} change(s) wait to be shared when it returns.", "共享状态：无法连接 Redis（{endpoint}）。本副本暂时按自己的数据提供服务；有 {pending} 项更改等 Redis 恢复后再同步。";
    banner_no_storage: "ENABLE_STORAGE=false: nothing changed here is saved; it is lost at the next restart.", "ENABLE_STORAGE=false：在这里做的更改都不会保存，下次重启即丢失。";
    // ---- plain-text error answers
    error_login_required: "Login required.", "需要登录。";
    error_csrf: "The form is stale or forged (CSRF check failed); reload the page and try again.", "表单已过期或被伪造（CSRF 校验失败）；请刷新页面后重试。";
    error_form_unreadable: "The form could not be read.", "无法读取表单。";
    error_form_too_large: "The form is too large.", "表单过大。";
    error_form_too_slow: "The form took too long to arrive.", "表单上传超时。";
    error_busy: "The server is busy; try again in a moment.", "服务器正忙，请稍后再试。";
    error_busy_passwords: "The server is busy checking passwords; try again in a moment.", "服务器正忙于校验密码，请稍后再试。";
    error_throttled: "Too many wrong passwords; try again later.", "密码错误次数过多，请稍后再试。";
    error_unknown_action: "Unknown action.", "未知操作。";
    // ---- shared words
    save: "Save", "保存";
    remove: "Remove", "移除";
    filter: "Filter", "筛选";
    dashboard_password: "Dashboard password", "面板密码";
    nothing_changed: "Nothing changed.", "没有更改。";
    saved_names: "Saved: {names}.", "已保存：{names}。";
    not_saved_reason: "Not saved: {reason}", "未保存：{reason}";
    back_to: "Back to {page}", "返回{page}";
    // ---- times and durations
    never: "never", "从未";
    in_seconds: "in {s} s", "{s} 秒后";
    in_minutes: "in {m} min {s} s", "{m} 分 {s} 秒后";
    in_hours: "in {h} h {m} min", "{h} 小时 {m} 分后";
    duration_seconds: "{s} s", "{s} 秒";
    duration_minutes: "{m} min", "{m} 分钟";
    duration_hours: "{h} h {m} min", "{h} 小时 {m} 分";
    duration_days: "{d} d {h} h", "{d} 天 {h} 小时";
    times_in_zone: "Times in {zone}", "时间按 {zone} 显示";
    // ---- login
    login_title: "Log in", "登录";
    login_heading: "Dashboard login", "登录控制台";
    password_label: "Password", "密码";
    log_in: "Log in", "登录";
    setup_heading: "Set up the dashboard", "设置控制台";
    setup_help_before: "No dashboard password is set yet. The server printed a setup code in its log when it started (a line", "还没有设置面板密码。服务器启动时在日志里打印了一个设置码（一行";
    setup_help_after: "; on Hugging Face: the Space's Logs tab). Enter it, then choose the dashboard password.", "；在 Hugging Face 上：Space 的 Logs 页）。输入它，然后设置面板密码。";
    setup_code_label: "Setup code", "设置码";
    login_form_expired: "The login form expired; please try again.", "登录表单已过期，请重试。";
    wrong_setup_code: "Wrong setup code", "设置码错误";
    wrong_password: "Wrong password", "密码错误";
    // ---- password page
    password_title: "Password", "面板密码";
    password_set_heading: "Set a new dashboard password", "设置面板密码";
    password_forced_note: "The setup code let you in once. Choose the dashboard password before anything else is shown; from then on the setup code no longer works.", "设置码只能让你登录这一次。请先设置面板密码，之后才会显示其他页面；设置后设置码即失效。";
    password_current: "Current password", "当前密码";
    password_new: "New password", "新密码";
    password_repeat: "Repeat the new password", "再次输入新密码";
    password_save: "Save password", "保存密码";
    password_wrong_current: "The current password is wrong.", "当前密码错误。";
    password_too_short: "The new password must have at least {n} characters.", "新密码至少需要 {n} 个字符。";
    password_too_long: "The new password must have at most {n} bytes.", "新密码最多 {n} 字节。";
    password_mismatch: "The two new passwords differ.", "两次输入的新密码不一致。";
    password_same: "Choose a password different from the current one.", "请设置一个与当前密码不同的新密码。";
    password_saved: "Password saved. Every other session was logged out.", "密码已保存，其他所有会话均已退出登录。";
    // ---- overview
    overview_backoff_label: "Global back-off:", "全局退避：";
    overview_backoff: "Google is limiting this server: the whole pool pauses, back {when}.", "Google 正在限制本服务器：整个密钥池暂停，{when}恢复。";
    overview_status: "Status", "状态";
    overview_active_requests: "Active requests", "进行中的请求";
    overview_cache_entries: "Cache entries", "缓存条目";
    overview_uptime: "Uptime", "运行时间";
    overview_version: "Version", "版本";
    overview_total: "Total", "总数";
    overview_limited: "Limited for some model", "部分模型受限";
    overview_manage_keys: "Manage keys →", "管理密钥 →";
    overview_errors_by_kind: "Errors by kind", "错误类型";
    overview_last_day_note: "(last 24 h)", "（最近 24 小时）";
    overview_no_failures: "No failed requests.", "没有失败的请求。";
    overview_kind: "Kind", "类型";
    overview_count: "Count", "次数";
    overview_rate: "Rate", "占比";
    overview_traffic: "Traffic", "流量";
    overview_window: "Window", "时段";
    overview_requests: "Requests", "请求";
    overview_successes: "Successes", "成功";
    overview_failures: "Failures", "失败";
    overview_cache_hits: "Cache hits", "缓存命中";
    overview_prompt_tokens: "Prompt tokens", "输入 token";
    overview_completion_tokens: "Completion tokens", "输出 token";
    overview_last_minute: "Last minute", "最近 1 分钟";
    overview_last_hour: "Last hour", "最近 1 小时";
    overview_last_day: "Last 24 hours", "最近 24 小时";
    chart_requests: "Requests per 15 minutes", "每 15 分钟请求数";
    chart_tokens: "Tokens per 15 minutes", "每 15 分钟 token 数";
    chart_peak: "{title}, peak {max}", "{title}，峰值 {max}";
    chart_from: "-24 h", "24 小时前";
    chart_now: "now", "现在";
    // ---- key states and availability (labels; the CSS hooks stay English)
    state_all: "All", "全部";
    state_active: "Active", "可用";
    state_limited: "Limited", "受限";
    state_invalid: "Invalid", "失效";
    state_disabled: "Disabled", "已停用";
    badge_active: "active", "可用";
    badge_invalid: "invalid", "失效";
    badge_disabled: "disabled", "已停用";
    badge_deleted: "deleted", "已删除";
    badge_removed: "removed", "已移除";
    avail_ready: "ready", "就绪";
    avail_cooling: "cooling", "冷却中";
    avail_exhausted: "exhausted", "今日额度已用完";
    avail_over_limit: "over limit", "超出每日上限";
    // ---- keys page
    keys_count: "{matching} of {total}", "共 {total} 个，显示 {matching} 个";
    keys_search_label: "Search", "搜索";
    keys_search_placeholder: "Search: visible characters or #id", "搜索：可见字符或 #编号";
    keys_state_label: "State", "状态";
    keys_selected: "Selected keys:", "选中的密钥：";
    keys_enable: "Enable", "启用";
    keys_disable: "Disable", "停用";
    keys_validate: "Validate", "验证";
    keys_delete: "Delete", "删除";
    keys_delete_confirm: "Delete the selected keys? This cannot be undone.", "删除选中的密钥？此操作无法撤销。";
    keys_select_all: "Select all keys on this page", "全选本页密钥";
    keys_select_key: "Select key #{id}", "选择密钥 #{id}";
    keys_key: "Key", "密钥";
    keys_usage_today: "Usage today", "今日用量";
    keys_last_error: "Last error", "最近错误";
    keys_used_validated: "Used, validated", "最近使用与验证";
    keys_usage_title: "successes, failures, tokens", "成功、失败、token 数";
    keys_tokens: "{n} tok", "{n} token";
    keys_free_again: "free again {when}", "{when}恢复";
    keys_invalid_since: "since {time}", "自 {time} 起";
    keys_never_used: "never used", "从未使用";
    keys_not_validated: "not validated", "未验证";
    keys_checked: "checked {time}", "{time} 验证";
    keys_none_match: "No keys match.", "没有匹配的密钥。";
    pager_label: "Pages", "分页";
    pager_previous: "← Previous", "← 上一页";
    pager_next: "Next →", "下一页 →";
    pager_page: "Page {page} of {pages}", "第 {page} 页，共 {pages} 页";
    keys_add: "Add keys", "添加密钥";
    keys_add_help: "Paste any text; keys are picked out of it, duplicates are reported.", "粘贴任意文本，会从中找出密钥，重复的会提示。";
    validation_heading: "Validation", "验证";
    validation_checking: "Checking: {done} of {total} ({percent}%) · valid {valid} · invalid {invalid}", "正在验证：{done}/{total}（{percent}%）· 有效 {valid} · 失效 {invalid}";
    validation_finished: "Finished: {done} of {total} ({percent}%) · valid {valid} · invalid {invalid}", "已完成：{done}/{total}（{percent}%）· 有效 {valid} · 失效 {invalid}";
    validation_last_run: "Last run: {done} of {total} checked · valid {valid} · invalid {invalid}", "上次验证：已检查 {done}/{total} · 有效 {valid} · 失效 {invalid}";
    validation_none: "No validation has run since start.", "启动以来还没有验证过。";
    validate_all: "Validate all keys", "验证全部密钥";
    clear_invalid: "Clear invalid keys", "清除失效密钥";
    clear_invalid_confirm: "Delete every invalid key?", "删除所有失效密钥？";
    limits_heading: "Daily limits per model", "各模型每日上限";
    limits_default: "Default for models not listed: {n}", "未列出的模型默认：{n}";
    limits_model: "Model", "模型";
    limits_per_key_per_day: "Per key per day", "每个密钥每天";
    limits_limit: "Limit", "上限";
    limits_placeholder: "empty = remove", "留空 = 删除";
    limits_set: "Set limit", "设置上限";
    export_heading: "Export valid keys", "导出有效密钥";
    export_help: "Downloads every valid key in full, one per line. Enter the dashboard password again; each export is recorded in the log.", "下载所有有效密钥的完整内容，每行一个。需要再次输入面板密码；每次导出都会记在日志里。";
    export_download: "Download keys", "下载密钥";
    // ---- keys flashes
    keys_added: "Keys added: {added}", "已添加密钥：{added} 个";
    keys_duplicate_one: "{n} duplicate skipped", "跳过 {n} 个重复的密钥";
    keys_duplicate_many: "{n} duplicates skipped", "跳过 {n} 个重复的密钥";
    keys_malformed_one: "{n} string looked like a key but is not valid (AIza… and 39 characters)", "{n} 个字符串像密钥但格式不对（应为 AIza… 开头、共 39 个字符）";
    keys_malformed_many: "{n} strings looked like a key but are not valid (AIza… and 39 characters)", "{n} 个字符串像密钥但格式不对（应为 AIza… 开头、共 39 个字符）";
    clause_separator: ", ", "，";
    sentence_end: ".", "。";
    keys_select_one: "Select at least one key.", "请至少选择一个密钥。";
    keys_disabled: "{n} key(s) disabled.", "已停用 {n} 个密钥。";
    keys_enabled: "{n} key(s) enabled.", "已启用 {n} 个密钥。";
    keys_deleted: "{n} key(s) deleted.", "已删除 {n} 个密钥。";
    keys_queued: "{n} key(s) queued for validation.", "{n} 个密钥已加入验证队列。";
    validation_started: "Validation of every key started.", "已开始验证全部密钥。";
    invalid_deleted: "{n} invalid key(s) deleted.", "已删除 {n} 个失效密钥。";
    export_refused_title: "Export refused", "导出被拒绝";
    export_refused: "The password was wrong; nothing was exported.", "密码错误，没有导出任何内容。";
    limit_bad_model: "Enter a model name (letters, digits, - . _).", "请输入模型名（字母、数字、- . _）。";
    limit_bad_number: "The limit must be a whole number.", "上限必须是整数。";
    limit_saved: "Daily limit for {model} saved.", "已保存 {model} 的每日上限。";
    // ---- settings page
    settings_nothing_saved: "Nothing was saved.", "没有保存任何更改。";
    settings_intro: "Each value shows where it comes from. Saving applies every change at once, or nothing if a value is invalid. Secret fields are never shown: leave one empty to keep its value.", "每个值都标明了来源。保存时所有更改一起生效；只要有一个值无效，就全部不保存。机密字段从不显示：留空即保持原值。";
    settings_groups_label: "Setting groups", "设置分组";
    settings_source_title: "Where the current value comes from", "当前值的来源";
    source_default: "default", "默认值";
    source_file: "config file", "配置文件";
    source_env: "environment", "环境变量";
    source_command_line: "command line", "命令行";
    source_dashboard: "dashboard", "面板";
    settings_restart_required: "restart required", "需重启";
    settings_guarded_tag: "password", "需密码";
    settings_guarded_title: "Decides where keys or tokens are sent: changing it needs the dashboard password", "决定密钥或令牌发往何处：修改它需要面板密码";
    settings_revert: "Revert", "还原";
    settings_revert_title: "Remove the dashboard override of {name}", "删除在面板里为 {name} 设置的值";
    settings_enabled: "enabled", "启用";
    settings_unchanged: "unchanged", "不修改";
    settings_confirm_note: "(only to change {names})", "（仅修改 {names} 时需要）";
    settings_save_all: "Save all settings", "保存全部设置";
    settings_after_restart: "{names} take(s) effect after a restart.", "{names} 需重启后生效。";
    settings_needs_password: "needs the dashboard password (below, next to Save)", "需要面板密码（在下方“保存”按钮旁）";
    settings_password_wrong: "needs the dashboard password: the one given was wrong", "需要面板密码：输入的密码不对";
    settings_guarded_summary: "Changing {names} decides where keys or tokens are sent: enter the dashboard password to save.", "{names} 决定密钥或令牌发往何处：请输入面板密码后再保存。";
    settings_fix: "Fix {names}.", "请修正 {names}。";
    import_heading: "Import the original's settings.json", "导入原版的 settings.json";
    import_help: "Settings, AI Studio keys and Vertex Express keys of the original hajimi's settings.json. Only valid values that differ from what is in force are stored; every skipped one is named.", "导入原版 hajimi 的 settings.json 中的设置、AI Studio 密钥和 Vertex Express 密钥。只保存有效且与当前生效值不同的设置；跳过的每一项都会列出。";
    import_file_label: "File", "文件";
    import_text_label: "Or paste its contents", "或粘贴文件内容";
    import_submit: "Import", "导入";
    import_empty: "Choose a settings.json or paste its contents.", "请选择 settings.json 或粘贴其内容。";
    import_done: "Imported: {names}.", "已导入：{names}。";
    import_nothing: "Nothing new to import.", "没有需要导入的新内容。";
    import_unchanged: "{n} already in force.", "{n} 项与当前生效值相同。";
    import_keys: "{n} AI Studio key(s) added.", "新增 {n} 个 AI Studio 密钥。";
    import_express_keys: "{n} Vertex Express key(s) added.", "新增 {n} 个 Vertex Express 密钥。";
    import_skipped: "Skipped: {items}.", "已跳过：{items}。";
    import_web_password: "set it on the Password page", "请在修改密码页设置";
    settings_reverted: "{name} reverted to its file, env or default value.", "{name} 已还原为配置文件、环境变量或默认值。";
    settings_not_reverted: "Not reverted: {reason}.", "未还原：{reason}。";
    settings_unknown: "unknown setting", "没有这个设置项";
    settings_not_overridden: "{name} has no dashboard value", "{name} 没有在面板里设置过";
    // ---- vertex page
    vertex_mode: "Mode", "模式";
    vertex_enable: "Enable Vertex mode", "启用 Vertex 模式";
    vertex_enable_note: "(service-account credentials)", "（服务账号凭据）";
    vertex_enable_express: "Enable Vertex Express", "启用 Vertex Express";
    vertex_express_note: "(Express API keys)", "（Express API 密钥）";
    vertex_in_use: "In use", "使用中";
    vertex_none_before: "No Vertex credential yet: add one below, or set", "还没有 Vertex 凭据：可在下方添加，或设置";
    vertex_none_or: "or", "或";
    vertex_none_files: ", or put key files in", "，或把密钥文件放进";
    vertex_express_key: "Express key", "Express 密钥";
    vertex_test: "Test", "测试";
    vertex_express_keys: "Express API keys", "Express API 密钥";
    vertex_no_express: "No Express keys yet.", "还没有 Express 密钥。";
    vertex_remove_express_confirm: "Remove this Express key?", "移除这个 Express 密钥？";
    vertex_add_express: "Add Express keys (paste any text)", "添加 Express 密钥（可粘贴任意文本）";
    vertex_accounts: "Service-account credentials", "服务账号凭据";
    vertex_no_accounts: "No credentials yet.", "还没有凭据。";
    vertex_project: "project {id}", "项目 {id}";
    vertex_remove_account_confirm: "Remove this credential?", "移除这个凭据？";
    vertex_add_account: "Add one service-account JSON key", "添加一个服务账号 JSON 密钥";
    vertex_add_account_button: "Add credential", "添加凭据";
    vertex_health_invalid: "invalid: {reason}", "失效：{reason}";
    // ---- vertex flashes
    vertex_express_added: "{n} Express key(s) added.", "已添加 {n} 个 Express 密钥。";
    vertex_express_removed: "Express key removed.", "已移除 Express 密钥。";
    vertex_no_such_express: "No such Express key.", "没有这个 Express 密钥。";
    vertex_not_added: "Not added: {error}.", "未添加：{error}。";
    vertex_one_at_a_time: "This holds {n} credentials; paste one key file at a time.", "这里有 {n} 个凭据；请一次只粘贴一个密钥文件。";
    vertex_credential_added: "Credential {email} added.", "已添加凭据 {email}。";
    vertex_credential_not_added: "Credential not added", "未添加凭据";
    vertex_no_such_credential: "No such credential.", "没有这个凭据。";
    vertex_credential_removed: "Credential {email} removed.", "已移除凭据 {email}。";
    vertex_no_such_account: "No such service account.", "没有这个服务账号。";
    vertex_token_granted: "{email}: token granted (valid {minutes} min).", "{email}：已获得令牌（有效 {minutes} 分钟）。";
    vertex_express_answered: "Express key {key}: Vertex answered ({model}).", "Express 密钥 {key}：Vertex 已响应（{model}）。";
    vertex_express_failed: "Express key {key}: HTTP {status} {message}", "Express 密钥 {key}：HTTP {status} {message}";
    vertex_nothing_to_test: "Nothing to test.", "没有可测试的项。";
    // ---- log page (the live tail's words are data attributes for app.js)
    log_level: "Level", "级别";
    log_source: "Source", "来源";
    log_all_levels: "All levels", "全部级别";
    log_errors: "Errors", "错误";
    log_warnings: "Warnings and errors", "警告和错误";
    log_info: "Info and above", "信息及以上";
    log_all_sources: "All sources", "全部来源";
    log_kept: "The newest record is last; at most {n} are kept.", "最新的记录在最后；最多保留 {n} 条。";
    log_live_off: "Live tail needs JavaScript; reload for new records.", "实时更新需要 JavaScript；刷新页面可看到新记录。";
    log_live_connecting: "Connecting to the live tail…", "正在连接实时日志…";
    log_live_on: "Live: new records appear below.", "实时：新记录会出现在下方。";
    log_live_stopped: "Live tail stopped; reload the page.", "实时日志已停止；请刷新页面。";
    log_live_reconnecting: "Reconnecting…", "正在重新连接…";
}

/// The strings of `lang`.
pub fn text(lang: Lang) -> &'static Text {
    match lang {
        Lang::En => &EN,
        Lang::Zh => &ZH,
    }
}

/// `template` with each `{name}` replaced by its value.
pub fn fill(template: &str, values: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| (&after[..close], &after[close + 1..])) {
            Some((name, tail)) if values.iter().any(|(known, _)| *known == name) => {
                let (_, value) = values.iter().find(|(known, _)| *known == name).expect("found above");
                out.push_str(&value.to_string());
                rest = tail;
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// [`fill`] with one value, for templates:
/// `{{ text::fill1(chrome.t.keys_checked, "time", row.last_validated) }}`.
pub fn fill1(template: &str, name: &str, value: impl std::fmt::Display) -> String {
    fill(template, &[(name, &value)])
}

/// [`fill`] with two values, for templates.
pub fn fill2(
    template: &str,
    first: &str,
    first_value: impl std::fmt::Display,
    second: &str,
    second_value: impl std::fmt::Display,
) -> String {
    fill(template, &[(first, &first_value), (second, &second_value)])
}

/// The language a page is shown in for this request.
pub fn lang_of(request: &HttpRequest, forced: Option<Lang>) -> Lang {
    if let Some(lang) = forced {
        return lang;
    }
    if let Some(lang) = request.cookie(LANG_COOKIE).and_then(|cookie| Lang::parse(cookie.value())) {
        return lang;
    }
    request
        .headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .map_or(Lang::En, Lang::from_accept_language)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{name}` placeholders of a string, sorted.
    fn placeholders(text: &str) -> Vec<&str> {
        let mut found: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|part| part.split_once('}').map(|(name, _)| name))
            .filter(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn every_string_exists_in_both_languages_with_the_same_placeholders() {
        let mut names = std::collections::HashSet::new();
        for (name, en, zh) in ALL {
            assert!(names.insert(name), "{name} twice");
            assert!(!en.trim().is_empty() && !zh.trim().is_empty(), "{name} is empty in one language");
            assert_eq!(placeholders(en), placeholders(zh), "{name}: placeholders differ");
            // Neither language carries the other's text ("English / 中文").
            assert!(!en.contains(" / ") && !zh.contains(" / "), "{name}: mixed languages");
            let has_cjk = |text: &str| text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
            assert!(
                !has_cjk(en) || *name == "switch_language" || *name == "switch_language_title",
                "{name}: Chinese in English"
            );
        }
    }

    #[test]
    fn fill_puts_values_into_named_places_only() {
        assert_eq!(fill(EN.in_minutes, &[("m", &3), ("s", &20)]), "in 3 min 20 s");
        assert_eq!(fill(ZH.in_minutes, &[("m", &3), ("s", &20)]), "3 分 20 秒后");
        assert_eq!(fill("{a} {unknown} {", &[("a", &"x")]), "x {unknown} {");
    }
}
