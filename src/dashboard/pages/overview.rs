//! The Overview: key counts, traffic windows, failures by kind, charts.

use super::*;

pub async fn overview(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, false)?;
    let config = state.config();
    let t = words(&request, &state);
    let format = Format { t, zone: &config.time_zone };
    let now_ms = state.now_ms();
    let summary = state.pool.summary(now_ms);
    let count = |label: &str, value: usize| CountRow { label: label.to_owned(), value: group_digits(value as u64) };
    let keys = vec![
        count(t.overview_total, summary.total),
        count(t.state_active, summary.active),
        count(t.overview_limited, summary.limited_for_some_model),
        count(t.state_invalid, summary.invalid),
        count(t.state_disabled, summary.disabled),
    ];
    let window = |label: &'static str, minutes: u64| {
        let totals = state.stats.totals(minutes, now_ms);
        WindowRow {
            label,
            requests: group_digits(totals.requests),
            successes: group_digits(totals.successes),
            failures: group_digits(totals.failures),
            cache_hits: group_digits(totals.cache_hits),
            prompt_tokens: group_digits(totals.prompt_tokens),
            completion_tokens: group_digits(totals.completion_tokens),
        }
    };
    let windows =
        vec![window(t.overview_last_minute, 1), window(t.overview_last_hour, 60), window(t.overview_last_day, 24 * 60)];
    let day = state.stats.totals(24 * 60, now_ms);
    let error_kinds = day
        .failures_by_kind
        .iter()
        .map(|(kind, count)| ErrorKindRow {
            kind: kind.clone(),
            count: group_digits(*count),
            rate: format!("{:.1}%", *count as f64 * 100.0 / day.requests.max(1) as f64),
        })
        .collect();
    // 24 h in 15-minute steps.
    let series = state.stats.series(24 * 60, now_ms);
    let per_step = |value: fn(&crate::store::MinuteStats) -> u64| -> Vec<u64> {
        series.chunks(15).map(|chunk| chunk.iter().map(value).sum()).collect()
    };
    let chart = |title: &'static str, values: Vec<u64>| {
        let points = crate::stats::chart_points(&values, 600, 120);
        Chart {
            title,
            width: 600,
            height: 120,
            points: points.points,
            max_label: group_digits(points.max),
            from_label: t.chart_from,
            to_label: t.chart_now,
        }
    };
    let page = OverviewPage {
        chrome: chrome(&request, &state, &info, "overview"),
        keys,
        windows,
        error_kinds,
        calls_chart: chart(t.chart_requests, per_step(|minute| minute.requests)),
        tokens_chart: chart(t.chart_tokens, per_step(|minute| minute.prompt_tokens + minute.completion_tokens)),
        active_requests: group_digits(state.stats.active_requests() as u64),
        cache_entries: group_digits(state.swipe_cache.len() as u64),
        uptime: format.duration(state.started_at.elapsed().as_secs()),
        version: VERSION,
        global_backoff: summary
            .global_backoff_until_ms
            .map(|until| text::fill(t.overview_backoff, &[("when", &format.until(until, now_ms))])),
    };
    html(&page, StatusCode::OK)
}
