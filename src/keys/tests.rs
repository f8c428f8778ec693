//! Pool state transitions, with time injected.

use std::time::Duration;

use super::*;

fn key(n: usize) -> ApiKey {
    ApiKey::new(format!("AIzaPoolTest{n:0>27}"))
}

fn pool(n: usize) -> KeyPool {
    KeyPool::new((0..n).map(key))
}

fn failure(kind: FailureKind, retry_after_secs: Option<u64>) -> UpstreamFailure {
    UpstreamFailure { status: 429, kind, retry_after: retry_after_secs.map(Duration::from_secs), message: "m".into() }
}

/// 2026-07-01 12:00 UTC (05:00 Pacific).
const NOW: u64 = 1_782_907_200_000;
/// The next Pacific midnight after NOW: 2026-07-02 07:00 UTC.
const MIDNIGHT: u64 = 1_782_975_600_000;

fn picks(pool: &KeyPool, model: &str, now: u64, count: usize) -> Vec<u32> {
    (0..count).map(|_| pool.pick(model, now, &[]).unwrap().id.0).collect()
}

#[test]
fn a_preferred_key_serves_while_it_can() {
    let pool = KeyPool::new((0..3).map(|n| crate::secret::ApiKey::new(format!("AIza{n:0>35}"))));
    let now = 1_700_000_000_000;
    assert_eq!(pool.pick_preferred("m", now, KeyId(2)).map(|lease| lease.id), Some(KeyId(2)));
    pool.set_disabled(KeyId(2), true);
    assert!(pool.pick_preferred("m", now, KeyId(2)).is_none(), "a disabled key is not preferred");
    let failure = crate::gemini::error::UpstreamFailure {
        kind: crate::gemini::error::FailureKind::QuotaPerMinute,
        status: 429,
        ..crate::gemini::error::UpstreamFailure::network("test")
    };
    pool.report_failure(KeyId(1), "m", &failure, now);
    assert!(pool.pick_preferred("m", now, KeyId(1)).is_none(), "a cooling key is not preferred");
    assert!(pool.pick_preferred("other-model", now, KeyId(1)).is_some(), "cooling is per model");
    assert!(pool.pick_preferred("m", now, KeyId(9)).is_none());
}

#[test]
fn round_robin_spreads_picks_over_all_keys() {
    let pool = pool(3);
    assert_eq!(picks(&pool, "m", NOW, 6), vec![0, 1, 2, 0, 1, 2]);
    // Each model rotates on its own.
    assert_eq!(picks(&pool, "other", NOW, 2), vec![0, 1]);
}

#[test]
fn excluded_keys_are_skipped_and_reported_as_tried() {
    let pool = pool(2);
    assert_eq!(pool.pick("m", NOW, &[KeyId(0)]).unwrap().id, KeyId(1));
    assert_eq!(pool.pick("m", NOW, &[KeyId(1)]).unwrap().id, KeyId(0));
    let error = pool.pick("m", NOW, &[KeyId(0), KeyId(1)]).unwrap_err();
    assert_eq!(error.reason, UnavailableReason::AllTried);
}

#[test]
fn per_minute_quota_cools_one_model_for_the_stated_delay() {
    let pool = pool(1);
    pool.report_failure(KeyId(0), "flash", &failure(FailureKind::QuotaPerMinute, Some(43)), NOW);
    let error = pool.pick("flash", NOW + 1000, &[]).unwrap_err();
    assert_eq!(error, Unavailable { reason: UnavailableReason::AllCooling, retry_at_ms: Some(NOW + 43_000) });
    assert!(pool.pick("pro", NOW + 1000, &[]).is_ok(), "other models unaffected");
    assert!(pool.pick("flash", NOW + 43_000, &[]).is_ok(), "cooldown over");
    let view = pool.key_view(KeyId(0), NOW + 1000).unwrap();
    let flash = view.models.iter().find(|m| m.model == "flash").unwrap();
    assert_eq!(
        flash.availability,
        ModelAvailability::Cooling { until_ms: NOW + 43_000, reason: CoolingReason::PerMinuteQuota }
    );
    assert_eq!(flash.usage_today.failures, 1);
}

#[test]
fn daily_quota_lasts_until_pacific_midnight_then_resets() {
    let pool = pool(2);
    pool.report_failure(KeyId(0), "pro", &failure(FailureKind::QuotaPerDay, Some(17)), NOW);
    // Key 1 serves meanwhile.
    assert_eq!(picks(&pool, "pro", NOW + 1, 3), vec![1, 1, 1]);
    pool.report_failure(KeyId(1), "pro", &failure(FailureKind::QuotaPerDay, None), NOW + 2);
    let error = pool.pick("pro", MIDNIGHT - 1, &[]).unwrap_err();
    assert_eq!(error, Unavailable { reason: UnavailableReason::AllExhaustedToday, retry_at_ms: Some(MIDNIGHT) });
    let mut after = picks(&pool, "pro", MIDNIGHT, 2);
    after.sort();
    assert_eq!(after, vec![0, 1]);
}

#[test]
fn daily_counters_reset_at_pacific_midnight() {
    let pool = pool(1);
    pool.report_success(KeyId(0), "m", 10, 5, NOW);
    pool.report_success(KeyId(0), "m", 1, 1, NOW + 1);
    let usage = |now| pool.key_view(KeyId(0), now).unwrap().models[0].usage_today;
    assert_eq!(usage(NOW + 2), DailyUsage { successes: 2, failures: 0, prompt_tokens: 11, completion_tokens: 6 });
    assert_eq!(usage(MIDNIGHT - 1).successes, 2);
    assert_eq!(usage(MIDNIGHT), DailyUsage::default());
}

#[test]
fn daily_limit_is_a_hard_limit_per_model_unless_overridden() {
    let pool = pool(2);
    pool.set_daily_limits(DailyLimits {
        default_limit: 1,
        per_model: HashMap::from([("big".to_owned(), 0)]),
        allow_over_limit: false,
    });
    for id in [0, 1] {
        pool.report_success(KeyId(id), "m", 0, 0, NOW);
    }
    let error = pool.pick("m", NOW + 1, &[]).unwrap_err();
    assert_eq!(error.reason, UnavailableReason::AllExhaustedToday);
    assert_eq!(error.retry_at_ms, Some(MIDNIGHT));
    // Another model, and a model whose limit is 0 (unlimited), still work.
    for id in [0, 1] {
        pool.report_success(KeyId(id), "big", 0, 0, NOW);
    }
    assert!(pool.pick("big", NOW + 1, &[]).is_ok());
    assert!(pool.pick("n", NOW + 1, &[]).is_ok());
    // Next day: available again.
    assert!(pool.pick("m", MIDNIGHT, &[]).is_ok());

    // The original's behaviour, opted in: use one anyway.
    let lenient = self::pool(2);
    lenient.set_daily_limits(DailyLimits { default_limit: 1, per_model: HashMap::new(), allow_over_limit: true });
    lenient.report_success(KeyId(0), "m", 0, 0, NOW);
    assert_eq!(picks(&lenient, "m", NOW + 1, 3), vec![1, 1, 1], "under-limit keys first");
    lenient.report_success(KeyId(1), "m", 0, 0, NOW);
    let mut over = picks(&lenient, "m", NOW + 2, 2);
    over.sort();
    assert_eq!(over, vec![0, 1]);
}

#[test]
fn invalid_keys_stay_out_until_revalidated_or_readded() {
    let pool = pool(2);
    pool.report_failure(KeyId(0), "m", &failure(FailureKind::KeyInvalid, None), NOW);
    assert_eq!(picks(&pool, "m", NOW, 3), vec![1, 1, 1]);
    assert!(matches!(pool.key_view(KeyId(0), NOW).unwrap().state, KeyState::Invalid { .. }));
    pool.report_failure(KeyId(1), "m", &failure(FailureKind::KeyInvalid, None), NOW);
    assert_eq!(pool.pick("m", NOW, &[]).unwrap_err().reason, UnavailableReason::AllInvalid);
    pool.mark_valid(KeyId(0), NOW + 1);
    assert_eq!(picks(&pool, "m", NOW + 1, 2), vec![0, 0]);
    assert_eq!(pool.add([key(1)]), 0, "re-adding is not a new key");
    let mut both = picks(&pool, "m", NOW + 1, 2);
    both.sort();
    assert_eq!(both, vec![0, 1]);
}

#[test]
fn client_errors_change_nothing() {
    let pool = pool(1);
    for kind in [FailureKind::ClientError, FailureKind::ModelNotFound, FailureKind::LocationUnsupported] {
        let outcome = pool.report_failure(KeyId(0), "m", &failure(kind, None), NOW);
        assert_eq!(outcome.penalty, Penalty::None);
    }
    let view = pool.key_view(KeyId(0), NOW).unwrap();
    assert_eq!(view.state, KeyState::Active);
    assert!(view.recent_errors.is_empty());
    assert!(pool.pick("m", NOW, &[]).is_ok());
}

#[test]
fn a_storm_of_rate_limits_is_a_global_backoff_not_a_condemned_pool() {
    let pool = pool(6);
    for id in 0..2 {
        let outcome = pool.report_failure(KeyId(id), "m", &failure(FailureKind::RateLimited, None), NOW + id as u64);
        assert!(!outcome.started_global_backoff);
    }
    let outcome = pool.report_failure(KeyId(2), "m", &failure(FailureKind::RateLimited, None), NOW + 2);
    assert!(outcome.started_global_backoff);
    let error = pool.pick("m", NOW + 10, &[]).unwrap_err();
    assert_eq!(error.reason, UnavailableReason::GlobalBackoff);
    let resume = error.retry_at_ms.unwrap();
    assert_eq!(resume, NOW + 2 + 5_000);
    // After the pause every key serves again, including the refused ones.
    let mut all = picks(&pool, "m", resume, 6);
    all.sort();
    assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
    // Rate limits spread over time are not a storm.
    let calm = self::pool(6);
    for id in 0..6 {
        let outcome =
            calm.report_failure(KeyId(id), "m", &failure(FailureKind::RateLimited, None), NOW + id as u64 * 10_000);
        assert!(!outcome.started_global_backoff);
    }
}

#[test]
fn repeated_storms_back_off_longer_and_success_resets() {
    let pool = pool(3);
    let storm = |at: u64| {
        for id in 0..3 {
            pool.report_failure(KeyId(id), "m", &failure(FailureKind::RateLimited, None), at);
        }
        pool.pick("m", at, &[]).unwrap_err().retry_at_ms.unwrap() - at
    };
    assert_eq!(storm(NOW), 5_000);
    assert_eq!(storm(NOW + 6_000), 10_000);
    pool.report_success(KeyId(0), "m", 0, 0, NOW + 20_000);
    assert_eq!(storm(NOW + 30_000), 5_000);
}

#[test]
fn disabled_keys_are_skipped_and_removed_keys_forgotten() {
    let pool = pool(3);
    pool.set_disabled(KeyId(1), true);
    assert_eq!(picks(&pool, "m", NOW, 4), vec![0, 2, 0, 2]);
    pool.remove(KeyId(2));
    assert_eq!(picks(&pool, "m", NOW, 2), vec![0, 0]);
    pool.set_disabled(KeyId(1), false);
    let mut both = picks(&pool, "m", NOW, 2);
    both.sort();
    assert_eq!(both, vec![0, 1]);
    let summary = pool.summary(NOW);
    assert_eq!((summary.total, summary.active, summary.disabled), (2, 2, 0));
    // Re-adding a removed key brings it back.
    pool.add([key(2)]);
    assert_eq!(pool.summary(NOW).active, 3);
}

#[test]
fn new_keys_join_existing_rotations() {
    let pool = pool(1);
    assert_eq!(picks(&pool, "m", NOW, 2), vec![0, 0]);
    assert_eq!(pool.add([key(1), key(0)]), 1);
    let mut both = picks(&pool, "m", NOW, 2);
    both.sort();
    assert_eq!(both, vec![0, 1]);
}

#[test]
fn picks_stay_correct_with_a_hundred_thousand_keys_mostly_cooling() {
    let pool = pool(100_000);
    for id in 0..99_999 {
        pool.report_failure(KeyId(id), "m", &failure(FailureKind::QuotaPerMinute, Some(30)), NOW);
    }
    for _ in 0..10 {
        assert_eq!(pool.pick("m", NOW + 1, &[]).unwrap().id, KeyId(99_999));
    }
    let error = pool.pick("m", NOW + 1, &[KeyId(99_999)]).unwrap_err();
    assert_eq!(error.reason, UnavailableReason::AllTried);
    assert!(pool.pick("m", NOW + 30_000, &[]).is_ok());
    assert_eq!(pool.summary(NOW + 1).limited_for_some_model, 99_999);
}

#[test]
fn views_never_contain_the_key() {
    let pool = pool(2);
    pool.report_failure(KeyId(0), "m", &failure(FailureKind::QuotaPerMinute, None), NOW);
    let views = pool.key_views(0, 10, NOW);
    assert_eq!(views.len(), 2);
    let printed = format!("{views:?}");
    assert!(!printed.contains(key(0).expose()), "{printed}");
    assert_eq!(views[0].recent_errors[0].kind, FailureKind::QuotaPerMinute);
}

#[test]
fn requests_for_many_model_names_never_erase_a_real_models_state() {
    let pool = pool(2);
    pool.set_daily_limits(DailyLimits { default_limit: 1, per_model: HashMap::new(), allow_over_limit: false });
    pool.report_failure(KeyId(0), "gemini-2.5-pro", &failure(FailureKind::QuotaPerDay, None), NOW);
    pool.report_success(KeyId(1), "gemini-2.5-pro", 10, 10, NOW);
    assert!(pool.pick("gemini-2.5-pro", NOW + 1, &[]).is_err());
    for n in 0..300 {
        let _ = pool.pick(&format!("bogus-{n}"), NOW + 2, &[]);
    }
    let error = pool.pick("gemini-2.5-pro", NOW + 3, &[]).unwrap_err();
    assert_eq!(error.reason, UnavailableReason::AllExhaustedToday, "exhausted keys must not come back");
    assert_eq!(pool.key_view(KeyId(1), NOW + 3).unwrap().models[0].usage_today.successes, 1);
}

#[test]
fn the_model_list_borrows_an_active_key_without_creating_a_queue() {
    let pool = pool(3);
    pool.report_failure(KeyId(0), "m", &failure(FailureKind::KeyInvalid, None), NOW);
    for _ in 0..5 {
        assert_ne!(pool.any_active_key().unwrap().id, KeyId(0));
    }
    assert!(pool.inner.lock().models.is_empty(), "no model queue was created");
    pool.report_failure(KeyId(1), "m", &failure(FailureKind::KeyInvalid, None), NOW);
    pool.report_failure(KeyId(2), "m", &failure(FailureKind::KeyInvalid, None), NOW);
    assert!(pool.any_active_key().is_none());
}

#[test]
fn the_over_limit_fallback_never_hands_out_a_cooling_key() {
    let pool = pool(2);
    pool.set_daily_limits(DailyLimits { default_limit: 1, per_model: HashMap::new(), allow_over_limit: true });
    pool.report_success(KeyId(0), "m", 0, 0, NOW);
    pool.report_success(KeyId(1), "m", 0, 0, NOW);
    let mut both = picks(&pool, "m", NOW + 1, 2);
    both.sort();
    assert_eq!(both, vec![0, 1], "both over the limit, both used anyway");
    pool.report_failure(KeyId(0), "m", &failure(FailureKind::QuotaPerMinute, Some(30)), NOW + 2);
    assert_eq!(picks(&pool, "m", NOW + 3, 3), vec![1, 1, 1]);
}

#[test]
fn changed_usage_is_handed_out_once_per_change_and_restored_the_same_day() {
    let live = pool(2);
    live.report_success(KeyId(0), "m", 10, 5, NOW);
    live.report_success(KeyId(0), "m", 1, 1, NOW);
    live.report_failure(KeyId(1), "m", &failure(FailureKind::RateLimited, Some(30)), NOW);
    let mut changed = live.take_changed_usage();
    changed.sort_by_key(|(key, ..)| key.expose().to_owned());
    assert_eq!(changed.len(), 2, "one row per (key, model), however many changes");
    assert_eq!(changed[0].3, DailyUsage { successes: 2, failures: 0, prompt_tokens: 11, completion_tokens: 6 });
    assert_eq!(changed[1].3.failures, 1);
    assert!(live.take_changed_usage().is_empty(), "nothing new since");
    live.report_success(KeyId(0), "m", 1, 1, NOW);
    assert_eq!(live.take_changed_usage().len(), 1);

    // A restart: today's row comes back, another day's does not.
    let restarted = pool(2);
    let (_, model, day, usage) = changed[0].clone();
    restarted.restore_usage(KeyId(0), &model, day, usage, NOW);
    restarted.restore_usage(KeyId(1), &model, day - 1, usage, NOW);
    let view = |id| restarted.key_view(KeyId(id), NOW).unwrap().models.first().map(|model| model.usage_today);
    assert_eq!(view(0), Some(usage));
    assert_eq!(view(1), None);
}
