//! The Log page and its live tail.

use super::*;

#[derive(Deserialize)]
pub struct LogQuery {
    level: Option<String>,
    source: Option<String>,
}

impl LogQuery {
    fn level(&self) -> Option<log::Level> {
        match self.level.as_deref() {
            Some("error") => Some(log::Level::Error),
            Some("warn") => Some(log::Level::Warn),
            Some("info") => Some(log::Level::Info),
            _ => None,
        }
    }

    fn source(&self) -> Option<&'static str> {
        let wanted = self.source.as_deref()?;
        crate::log_ring::SOURCES.iter().copied().find(|source| *source == wanted)
    }
}

/// Whether a shared record's level (`ERROR`, `WARN`, …) is `min` or more
/// severe.
pub(super) fn level_at_least(level: &str, min: log::Level) -> bool {
    level.parse::<log::Level>().is_ok_and(|level| level <= min)
}

pub(super) fn shared_replica(state: &AppState) -> &str {
    state.shared.as_ref().map_or("", |shared| shared.replica())
}

pub(super) fn log_row(record: &crate::log_ring::LogRecord, format: Format) -> LogRow {
    LogRow {
        seq: record.seq,
        time: format.time(record.time_ms),
        level: record.level.as_str().to_owned(),
        source: record.source.to_owned(),
        message: record.message.clone(),
    }
}

pub async fn log_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, false)?;
    let config = state.config();
    let t = words(&request, &state);
    let format = Format { t, zone: &config.time_zone };
    let ring = crate::log_ring::global();
    let merged = match &state.shared {
        Some(shared) => shared.link().merged_log(ring.capacity()).await,
        None => None,
    };
    // With shared state, the log of every replica (each line names its
    // replica); this replica's own log while Redis is away.
    let records = match merged {
        Some(merged) => merged
            .into_iter()
            .filter(|record| query.level().is_none_or(|min| level_at_least(&record.level, min)))
            .filter(|record| query.source().is_none_or(|source| record.source == source))
            .map(|record| LogRow {
                seq: if shared_replica(&state) == record.replica { record.seq } else { 0 },
                time: format.time(record.time_ms),
                level: record.level,
                source: record.source,
                message: format!("[{}] {}", record.replica, record.message),
            })
            .collect(),
        None => ring.records(query.level(), query.source()).iter().map(|record| log_row(record, format)).collect(),
    };
    let level = query.level.as_deref().unwrap_or("");
    let source = query.source().unwrap_or("");
    let levels = [("", t.log_all_levels), ("error", t.log_errors), ("warn", t.log_warnings), ("info", t.log_info)]
        .iter()
        .map(|(value, label)| Choice { value: (*value).into(), label: (*label).into(), selected: *value == level })
        .collect();
    let sources = std::iter::once("")
        .chain(crate::log_ring::SOURCES.iter().copied())
        .map(|value| Choice {
            value: value.into(),
            label: if value.is_empty() { t.log_all_sources.into() } else { value.into() },
            selected: value == source,
        })
        .collect();
    let stream_query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("level", level)
        .append_pair("source", source)
        .finish();
    let page = LogPage {
        chrome: chrome(&request, &state, &info, "log"),
        records,
        levels,
        sources,
        stream_url: format!("{}/log/stream?{stream_query}", prefix_of(&state)),
        capacity: ring.capacity().to_string(),
    };
    html(&page, StatusCode::OK)
}

/// Live tail: every new record matching the filters as an SSE event.
pub async fn log_stream(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, DashboardError> {
    session(&request, &state, false)?;
    let (t, zone) = (words(&request, &state), state.config().time_zone.clone());
    let (min_level, source) = (query.level(), query.source());
    let receiver = crate::log_ring::global().subscribe();
    let records = tokio_stream_from(receiver).filter_map(move |record| {
        let zone = zone.clone();
        async move {
            let format = Format { t, zone: &zone };
            let record = record?;
            let level_ok = min_level.is_none_or(|min| record.level <= min);
            let source_ok = source.is_none_or(|source| record.source == source);
            if !(level_ok && source_ok) {
                return None;
            }
            let mut json = serde_json::to_value(&*record).ok()?;
            json["seq"] = serde_json::json!(record.seq);
            json["time"] = serde_json::json!(format.time(record.time_ms));
            Some(Ok::<_, actix_web::Error>(web::Bytes::from(format!("data: {json}\n\n"))))
        }
    });
    // A comment every 15 s keeps proxies from closing an idle tail.
    let keep_alive = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Some((Ok::<_, actix_web::Error>(web::Bytes::from_static(b": keep-alive\n\n")), ()))
    });
    let opening =
        futures_util::stream::once(async { Ok::<_, actix_web::Error>(web::Bytes::from_static(b": tail\n\n")) });
    // The tail ends when the server begins to stop (SIGTERM): an open Log
    // page must not hold the shutdown for SHUTDOWN_TIMEOUT.
    let mut stopping = state.stopping.subscribe();
    let stopped = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    };
    let body = opening.chain(futures_util::stream::select(records, keep_alive)).take_until(stopped);
    let mut response = HttpResponse::Ok();
    security_headers(&mut response);
    Ok(response
        .content_type("text/event-stream")
        .insert_header((crate::delivery::stream::X_ACCEL_BUFFERING, "no"))
        .streaming(body))
}

/// A broadcast receiver as a stream of records (`None` items for records
/// the tail was too slow to receive: they are skipped).
pub(super) fn tokio_stream_from(
    receiver: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::log_ring::LogRecord>>,
) -> impl futures_util::Stream<Item = Option<std::sync::Arc<crate::log_ring::LogRecord>>> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(record) => Some((Some(record), receiver)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some((None, receiver)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
}
