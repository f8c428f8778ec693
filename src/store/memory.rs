//! The store of `ENABLE_STORAGE=false` (and of tests): the same semantics
//! as [`super::sqlite::SqliteStore`], held in memory behind one mutex for
//! the life of the process. Nothing reaches the disk. The request log
//! keeps only the newest [`MAX_REQUEST_RECORDS`] records, and usage only
//! the most recent Pacific day (the only one `load` ever returns).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{
    Change, KeyAction, MinuteStats, RequestRecord, Snapshot, Store, StoreError, StoredCredential, StoredKeyHealth,
    StoredResponse, StoredUsage,
};

/// How many request records the memory store keeps (oldest dropped first).
pub const MAX_REQUEST_RECORDS: usize = 10_000;
/// Bytes of stored responses the memory store keeps at most (the oldest
/// are forgotten first): without a disk they live in the process's memory.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The in-memory implementation of [`Store`].
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    setting_overrides: BTreeMap<String, String>,
    /// Oldest first; `added_key_set` answers "already added?".
    added_keys: Vec<String>,
    added_key_set: HashSet<String>,
    key_actions: BTreeMap<String, KeyAction>,
    key_health: BTreeMap<String, StoredKeyHealth>,
    /// The most recent Pacific day seen and its rows by (key, model).
    usage_day: Option<i64>,
    usage: BTreeMap<(String, String), StoredUsage>,
    model_limits: BTreeMap<String, u32>,
    password_hash: Option<String>,
    /// In the order first added; an update keeps the place.
    credentials: Vec<StoredCredential>,
    express_keys: Vec<String>,
    minute_stats: BTreeMap<u64, MinuteStats>,
    /// Oldest first, at most `MAX_REQUEST_RECORDS`.
    requests: VecDeque<RequestRecord>,
    /// Stored responses by id, their ids in the order saved, and their
    /// bytes (at most [`MAX_RESPONSE_BYTES`]).
    responses: HashMap<String, Arc<StoredResponse>>,
    response_order: VecDeque<String>,
    response_bytes: usize,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl MemoryState {
    fn apply_change(&mut self, change: &Change) {
        match change {
            Change::SetSetting { name, value } => {
                self.setting_overrides.insert(name.clone(), value.clone());
            }
            Change::RemoveSetting { name } => {
                self.setting_overrides.remove(name);
            }
            Change::AddKeys(keys) => {
                for key in keys {
                    if !self.added_key_set.contains(key) {
                        self.added_key_set.insert(key.clone());
                        self.added_keys.push(key.clone());
                    }
                    if self.key_actions.get(key) == Some(&KeyAction::Deleted) {
                        self.key_actions.remove(key);
                    }
                }
            }
            Change::SetKeyAction { key, action: Some(action) } => {
                self.key_actions.insert(key.clone(), *action);
            }
            Change::SetKeyAction { key, action: None } => {
                self.key_actions.remove(key);
            }
            Change::KeyHealth(health) => {
                self.key_health.insert(health.key.clone(), health.clone());
            }
            Change::Usage(usage) => self.record_usage(usage),
            Change::SetModelLimit { model, limit: Some(limit) } => {
                self.model_limits.insert(model.clone(), *limit);
            }
            Change::SetModelLimit { model, limit: None } => {
                self.model_limits.remove(model);
            }
            Change::SetPasswordHash(hash) => self.password_hash = Some(hash.clone()),
            Change::AddCredential(credential) => {
                match self.credentials.iter_mut().find(|known| known.client_email == credential.client_email) {
                    Some(known) => *known = credential.clone(),
                    None => self.credentials.push(credential.clone()),
                }
            }
            Change::RemoveCredential { client_email } => {
                self.credentials.retain(|known| &known.client_email != client_email);
            }
            Change::AddExpressKey(key) => {
                if !self.express_keys.contains(key) {
                    self.express_keys.push(key.clone());
                }
            }
            Change::RemoveExpressKey(key) => self.express_keys.retain(|known| known != key),
            Change::MinuteStats(stats) => {
                self.minute_stats.insert(stats.minute, stats.clone());
            }
            Change::Request(record) => {
                if self.requests.len() >= MAX_REQUEST_RECORDS {
                    self.requests.pop_front();
                }
                self.requests.push_back(record.clone());
            }
            // Shared between replicas only; a single node keeps these in memory.
            Change::SessionStarted { .. }
            | Change::SessionEnded { .. }
            | Change::PasswordChangedIn { .. }
            | Change::KeyCooling { .. }
            | Change::KeyExhausted { .. }
            | Change::AddressLockedOut { .. } => {}
            Change::Prune { stats_before_minute, requests_before_ms } => {
                self.minute_stats = self.minute_stats.split_off(stats_before_minute);
                self.requests.retain(|record| record.at_ms >= *requests_before_ms);
            }
            Change::SaveResponse(response) => self.save_response(response),
            Change::DeleteResponse { id, scope } => {
                if self.responses.get(id).is_some_and(|known| &known.scope == scope) {
                    self.forget_response(id);
                }
            }
            Change::PruneResponses { before_ms } => {
                let old: Vec<String> = self
                    .responses
                    .values()
                    .filter(|response| response.created_ms < *before_ms)
                    .map(|response| response.id.clone())
                    .collect();
                for id in old {
                    self.forget_response(&id);
                }
            }
        }
    }

    fn save_response(&mut self, response: &Arc<StoredResponse>) {
        self.forget_response(&response.id);
        self.response_bytes += response.size();
        self.response_order.push_back(response.id.clone());
        self.responses.insert(response.id.clone(), Arc::clone(response));
        while self.response_bytes > MAX_RESPONSE_BYTES {
            let Some(oldest) = self.response_order.front().cloned() else { break };
            self.forget_response(&oldest);
        }
    }

    fn forget_response(&mut self, id: &str) {
        if let Some(known) = self.responses.remove(id) {
            self.response_bytes -= known.size();
            if self.response_order.front().is_some_and(|oldest| oldest == id) {
                self.response_order.pop_front();
            } else {
                self.response_order.retain(|kept| kept != id);
            }
        }
    }

    /// Only the most recent day is ever loaded, so older days are dropped
    /// as soon as a newer one appears (and rows of older days ignored).
    fn record_usage(&mut self, usage: &StoredUsage) {
        match self.usage_day {
            Some(day) if usage.pacific_day < day => return,
            Some(day) if usage.pacific_day == day => {}
            _ => {
                self.usage.clear();
                self.usage_day = Some(usage.pacific_day);
            }
        }
        self.usage.insert((usage.key.clone(), usage.model.clone()), usage.clone());
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let state = self.state.lock();
        Ok(Snapshot {
            setting_overrides: state.setting_overrides.clone(),
            added_keys: state.added_keys.clone(),
            key_actions: state.key_actions.clone(),
            key_health: state.key_health.values().cloned().collect(),
            usage: state.usage.values().cloned().collect(),
            model_limits: state.model_limits.clone(),
            password_hash: state.password_hash.clone(),
            credentials: state.credentials.clone(),
            express_keys: state.express_keys.clone(),
            sessions: Vec::new(),
        })
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        // Nothing here can fail, so applying under one lock is all or nothing.
        let mut state = self.state.lock();
        for change in changes {
            state.apply_change(change);
        }
        Ok(())
    }

    fn stats_since(&self, since_minute: u64) -> Result<Vec<MinuteStats>, StoreError> {
        Ok(self.state.lock().minute_stats.range(since_minute..).map(|(_, stats)| stats.clone()).collect())
    }

    fn recent_requests(&self, limit: usize) -> Result<Vec<RequestRecord>, StoreError> {
        Ok(self.state.lock().requests.iter().rev().take(limit).cloned().collect())
    }

    fn response(&self, id: &str, scope: &str) -> Result<Option<StoredResponse>, StoreError> {
        let state = self.state.lock();
        Ok(state
            .responses
            .get(id)
            .filter(|response| response.scope == scope)
            .map(|response| StoredResponse::clone(response)))
    }
}

/// The contract every [`Store`] must meet, shared by the tests of each
/// implementation.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const KEY_ONE: &str = "AIzaRoundTripKey00000000000000000000001";
    const KEY_TWO: &str = "AIzaRoundTripKey00000000000000000000002";
    const KEY_THREE: &str = "AIzaRoundTripKey00000000000000000000003";
    const KEY_FOUR_FROM_ENV: &str = "AIzaRoundTripKey00000000000000000000004";
    const KEY_FIVE: &str = "AIzaRoundTripKey00000000000000000000005";

    fn usage(key: &str, model: &str, pacific_day: i64, successes: u64) -> StoredUsage {
        StoredUsage {
            key: key.to_owned(),
            model: model.to_owned(),
            pacific_day,
            successes,
            failures: successes / 2,
            prompt_tokens: successes * 100,
            completion_tokens: successes * 10,
        }
    }

    fn credential(client_email: &str, version: u32) -> StoredCredential {
        StoredCredential {
            client_email: client_email.to_owned(),
            project_id: format!("project-{version}"),
            json: format!(r#"{{"client_email":"{client_email}","private_key":"pem {version}"}}"#),
        }
    }

    fn health(key: &str, invalid_reason: Option<&str>, last_validated_ms: u64) -> StoredKeyHealth {
        StoredKeyHealth { key: key.to_owned(), invalid_reason: invalid_reason.map(str::to_owned), last_validated_ms }
    }

    fn minute(minute: u64, requests: u64, failure_kinds: &[(&str, u64)]) -> MinuteStats {
        MinuteStats {
            minute,
            requests,
            successes: requests.saturating_sub(1),
            failures: 1,
            cache_hits: 2,
            prompt_tokens: requests * 1_000,
            completion_tokens: requests * 100,
            failures_by_kind: failure_kinds.iter().map(|(kind, count)| (kind.to_string(), *count)).collect(),
        }
    }

    fn request(at_ms: u64, key_id: Option<u32>, status: u16, error_kind: Option<&str>) -> RequestRecord {
        RequestRecord {
            at_ms,
            method: "POST".to_owned(),
            route: "/v1/chat/completions".to_owned(),
            model: "gemini-2.5-pro".to_owned(),
            key_id,
            status,
            latency_ms: 1_234,
            prompt_tokens: 50,
            completion_tokens: 7,
            error_kind: error_kind.map(str::to_owned),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    /// What a store must answer after a step.
    #[derive(Default)]
    struct Expected {
        snapshot: Snapshot,
        minutes: Vec<MinuteStats>,
        requests_newest_first: Vec<RequestRecord>,
    }

    struct Step {
        label: &'static str,
        changes: Vec<Change>,
        expect: fn(&mut Expected),
    }

    fn steps() -> Vec<Step> {
        vec![
            Step { label: "nothing", changes: vec![], expect: |_| {} },
            Step {
                label: "set settings",
                changes: vec![
                    Change::SetSetting { name: "PORT".into(), value: "8080".into() },
                    Change::SetSetting { name: "FAKE_STREAMING".into(), value: "false".into() },
                ],
                expect: |expected| {
                    let overrides = &mut expected.snapshot.setting_overrides;
                    overrides.insert("PORT".into(), "8080".into());
                    overrides.insert("FAKE_STREAMING".into(), "false".into());
                },
            },
            Step {
                label: "replace and remove settings",
                changes: vec![
                    Change::SetSetting { name: "PORT".into(), value: "9090".into() },
                    Change::RemoveSetting { name: "FAKE_STREAMING".into() },
                    Change::RemoveSetting { name: "NEVER_SET".into() },
                ],
                expect: |expected| {
                    let overrides = &mut expected.snapshot.setting_overrides;
                    overrides.insert("PORT".into(), "9090".into());
                    overrides.remove("FAKE_STREAMING");
                },
            },
            Step {
                label: "add keys, one twice in the batch",
                changes: vec![Change::AddKeys(strings(&[KEY_ONE, KEY_TWO, KEY_THREE, KEY_ONE]))],
                expect: |expected| expected.snapshot.added_keys = strings(&[KEY_ONE, KEY_TWO, KEY_THREE]),
            },
            Step {
                label: "key actions, also on a key that is not added (env)",
                changes: vec![
                    Change::SetKeyAction { key: KEY_ONE.into(), action: Some(KeyAction::Disabled) },
                    Change::SetKeyAction { key: KEY_TWO.into(), action: Some(KeyAction::Disabled) },
                    Change::SetKeyAction { key: KEY_TWO.into(), action: Some(KeyAction::Deleted) },
                    Change::SetKeyAction { key: KEY_FOUR_FROM_ENV.into(), action: Some(KeyAction::Deleted) },
                ],
                expect: |expected| {
                    let actions = &mut expected.snapshot.key_actions;
                    actions.insert(KEY_ONE.into(), KeyAction::Disabled);
                    actions.insert(KEY_TWO.into(), KeyAction::Deleted);
                    actions.insert(KEY_FOUR_FROM_ENV.into(), KeyAction::Deleted);
                },
            },
            Step {
                label: "adding again keeps places, clears Deleted, keeps Disabled",
                changes: vec![Change::AddKeys(strings(&[KEY_FIVE, KEY_THREE, KEY_TWO, KEY_ONE, KEY_FOUR_FROM_ENV]))],
                expect: |expected| {
                    expected.snapshot.added_keys = strings(&[KEY_ONE, KEY_TWO, KEY_THREE, KEY_FIVE, KEY_FOUR_FROM_ENV]);
                    expected.snapshot.key_actions.remove(KEY_TWO);
                    expected.snapshot.key_actions.remove(KEY_FOUR_FROM_ENV);
                },
            },
            Step {
                label: "clear a key action",
                changes: vec![Change::SetKeyAction { key: KEY_ONE.into(), action: None }],
                expect: |expected| {
                    expected.snapshot.key_actions.remove(KEY_ONE);
                },
            },
            Step {
                label: "key health, replaced per key",
                changes: vec![
                    Change::KeyHealth(health(KEY_THREE, Some("API_KEY_INVALID"), 1_000)),
                    Change::KeyHealth(health(KEY_ONE, Some("PERMISSION_DENIED"), 2_000)),
                    Change::KeyHealth(health(KEY_TWO, None, 3_000)),
                    Change::KeyHealth(health(KEY_ONE, None, 4_000)),
                ],
                expect: |expected| {
                    expected.snapshot.key_health = vec![
                        health(KEY_ONE, None, 4_000),
                        health(KEY_TWO, None, 3_000),
                        health(KEY_THREE, Some("API_KEY_INVALID"), 1_000),
                    ];
                },
            },
            Step {
                label: "usage of one day",
                changes: vec![
                    Change::Usage(usage(KEY_TWO, "gemini-2.5-pro", 20_100, 3)),
                    Change::Usage(usage(KEY_ONE, "gemini-2.5-pro", 20_100, 5)),
                    Change::Usage(usage(KEY_ONE, "gemini-2.5-flash", 20_100, 7)),
                ],
                expect: |expected| {
                    expected.snapshot.usage = vec![
                        usage(KEY_ONE, "gemini-2.5-flash", 20_100, 7),
                        usage(KEY_ONE, "gemini-2.5-pro", 20_100, 5),
                        usage(KEY_TWO, "gemini-2.5-pro", 20_100, 3),
                    ];
                },
            },
            Step {
                label: "usage of a newer day hides the older day; rows are replaced",
                changes: vec![
                    Change::Usage(usage(KEY_THREE, "gemini-2.5-pro", 20_101, 1)),
                    Change::Usage(usage(KEY_THREE, "gemini-2.5-pro", 20_101, 2)),
                    Change::Usage(usage(KEY_ONE, "gemini-2.5-pro", 20_099, 9)),
                ],
                expect: |expected| expected.snapshot.usage = vec![usage(KEY_THREE, "gemini-2.5-pro", 20_101, 2)],
            },
            Step {
                label: "model limits set, replaced, removed",
                changes: vec![
                    Change::SetModelLimit { model: "gemini-2.5-pro".into(), limit: Some(50) },
                    Change::SetModelLimit { model: "gemini-2.5-flash".into(), limit: Some(250) },
                    Change::SetModelLimit { model: "gemini-2.5-pro".into(), limit: Some(u32::MAX) },
                    Change::SetModelLimit { model: "gemini-2.5-flash".into(), limit: None },
                ],
                expect: |expected| {
                    expected.snapshot.model_limits.insert("gemini-2.5-pro".into(), u32::MAX);
                },
            },
            Step {
                label: "password hash, replaced",
                changes: vec![
                    Change::SetPasswordHash("$argon2id$v=19$m=19456,t=2,p=1$first".into()),
                    Change::SetPasswordHash("$argon2id$v=19$m=19456,t=2,p=1$second".into()),
                ],
                expect: |expected| {
                    expected.snapshot.password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$second".into());
                },
            },
            Step {
                label: "credentials added, updated in place, removed",
                changes: vec![
                    Change::AddCredential(credential("a@project.iam.gserviceaccount.com", 1)),
                    Change::AddCredential(credential("b@project.iam.gserviceaccount.com", 1)),
                    Change::AddCredential(credential("c@project.iam.gserviceaccount.com", 1)),
                    Change::AddCredential(credential("a@project.iam.gserviceaccount.com", 2)),
                    Change::RemoveCredential { client_email: "b@project.iam.gserviceaccount.com".into() },
                    Change::RemoveCredential { client_email: "never@added".into() },
                ],
                expect: |expected| {
                    expected.snapshot.credentials = vec![
                        credential("a@project.iam.gserviceaccount.com", 2),
                        credential("c@project.iam.gserviceaccount.com", 1),
                    ];
                },
            },
            Step {
                label: "express keys: duplicates ignored, a removed key comes back last",
                changes: vec![
                    Change::AddExpressKey("express-one".into()),
                    Change::AddExpressKey("express-two".into()),
                    Change::AddExpressKey("express-one".into()),
                    Change::RemoveExpressKey("express-one".into()),
                    Change::AddExpressKey("express-three".into()),
                    Change::AddExpressKey("express-one".into()),
                ],
                expect: |expected| {
                    expected.snapshot.express_keys = strings(&["express-two", "express-three", "express-one"]);
                },
            },
            Step {
                label: "minute stats, replaced per minute",
                changes: vec![
                    Change::MinuteStats(minute(29_000_001, 4, &[])),
                    Change::MinuteStats(minute(29_000_000, 3, &[("quota", 1)])),
                    Change::MinuteStats(minute(29_000_002, 5, &[("client", 2), ("server", 1)])),
                    Change::MinuteStats(minute(29_000_000, 6, &[("quota", 2), ("invalid_key", 1)])),
                ],
                expect: |expected| {
                    expected.minutes = vec![
                        minute(29_000_000, 6, &[("quota", 2), ("invalid_key", 1)]),
                        minute(29_000_001, 4, &[]),
                        minute(29_000_002, 5, &[("client", 2), ("server", 1)]),
                    ];
                },
            },
            Step {
                label: "request records",
                changes: vec![
                    Change::Request(request(1_740_000_000_000, Some(1), 200, None)),
                    Change::Request(request(1_740_000_001_000, None, 401, Some("client"))),
                    Change::Request(request(1_740_000_002_000, Some(u32::MAX), 429, Some("quota"))),
                ],
                expect: |expected| {
                    expected.requests_newest_first = vec![
                        request(1_740_000_002_000, Some(u32::MAX), 429, Some("quota")),
                        request(1_740_000_001_000, None, 401, Some("client")),
                        request(1_740_000_000_000, Some(1), 200, None),
                    ];
                },
            },
            Step {
                label: "prune drops older stats and records only",
                changes: vec![Change::Prune { stats_before_minute: 29_000_001, requests_before_ms: 1_740_000_001_000 }],
                expect: |expected| {
                    expected.minutes.remove(0);
                    expected.requests_newest_first.pop();
                },
            },
        ]
    }

    /// Applies every step in turn (each as one batch) and checks the whole
    /// visible state after each.
    pub(crate) fn check_every_change_round_trips(store: &dyn Store) {
        let mut expected = Expected::default();
        for step in steps() {
            store.apply(&step.changes).unwrap_or_else(|error| panic!("{}: apply: {error}", step.label));
            (step.expect)(&mut expected);
            assert_eq!(store.load().expect("load"), expected.snapshot, "{}", step.label);
            assert_eq!(store.stats_since(0).expect("stats"), expected.minutes, "{}", step.label);
            assert_eq!(
                store.stats_since(29_000_001).expect("stats"),
                expected.minutes.iter().filter(|stats| stats.minute >= 29_000_001).cloned().collect::<Vec<_>>(),
                "{}",
                step.label
            );
            assert_eq!(store.recent_requests(100).expect("requests"), expected.requests_newest_first, "{}", step.label);
            assert_eq!(
                store.recent_requests(1).expect("requests"),
                expected.requests_newest_first.iter().take(1).cloned().collect::<Vec<_>>(),
                "{}",
                step.label
            );
        }
    }

    pub(crate) fn stored_response(id: &str, scope: &str, created_ms: u64, body: &str) -> StoredResponse {
        StoredResponse {
            id: id.to_owned(),
            scope: scope.to_owned(),
            created_ms,
            expires_ms: created_ms + 3_600_000,
            body: body.to_owned(),
        }
    }

    /// Stored responses: saved, read only by their own scope, replaced,
    /// deleted only by their own scope, pruned by age.
    pub(crate) fn check_responses_round_trip(store: &dyn Store) {
        let (alice, bob) = (crate::store::scope_digest(b"alice"), crate::store::scope_digest(b"bob"));
        let first = stored_response("resp_1", &alice, 1_000, r#"{"n":1}"#);
        let second = stored_response("resp_2", &bob, 2_000, r#"{"n":2}"#);
        store
            .apply(&[Change::SaveResponse(first.clone().into()), Change::SaveResponse(second.clone().into())])
            .unwrap();
        assert_eq!(store.response("resp_1", &alice).unwrap(), Some(first.clone()));
        assert_eq!(store.response("resp_1", &bob).unwrap(), None, "another client's response is not found");
        assert_eq!(store.response("resp_9", &alice).unwrap(), None);
        let replaced = stored_response("resp_1", &alice, 1_500, r#"{"n":"again"}"#);
        store.apply(&[Change::SaveResponse(replaced.clone().into())]).unwrap();
        assert_eq!(store.response("resp_1", &alice).unwrap(), Some(replaced));
        store.apply(&[Change::DeleteResponse { id: "resp_2".into(), scope: alice.clone() }]).unwrap();
        assert_eq!(store.response("resp_2", &bob).unwrap(), Some(second), "only its own client deletes it");
        store.apply(&[Change::DeleteResponse { id: "resp_2".into(), scope: bob.clone() }]).unwrap();
        assert_eq!(store.response("resp_2", &bob).unwrap(), None);
        store.apply(&[Change::SaveResponse(stored_response("resp_3", &bob, 3_000, "{}").into())]).unwrap();
        store.apply(&[Change::PruneResponses { before_ms: 2_000 }]).unwrap();
        assert_eq!(store.response("resp_1", &alice).unwrap(), None, "pruned");
        assert!(store.response("resp_3", &bob).unwrap().is_some(), "newer ones stay");
        // Responses are not part of the startup snapshot.
        assert_eq!(store.load().unwrap(), Snapshot::default());
    }

    #[test]
    fn stored_responses_round_trip_through_memory() {
        check_responses_round_trip(&MemoryStore::new());
    }

    #[test]
    fn the_memory_store_forgets_the_oldest_responses_beyond_its_bound() {
        let store = MemoryStore::new();
        let body = "x".repeat(MAX_RESPONSE_BYTES / 4);
        for n in 0..6u64 {
            store.apply(&[Change::SaveResponse(stored_response(&format!("resp_{n}"), "s", n, &body).into())]).unwrap();
        }
        assert!(store.response("resp_0", "s").unwrap().is_none());
        assert!(store.response("resp_2", "s").unwrap().is_none());
        assert!(store.response("resp_3", "s").unwrap().is_some());
        assert!(store.response("resp_5", "s").unwrap().is_some());
        assert!(store.state.lock().response_bytes <= MAX_RESPONSE_BYTES);
    }

    /// Every step's changes in one batch (the reopen tests).
    pub(crate) fn sample_changes() -> Vec<Change> {
        steps().into_iter().flat_map(|step| step.changes).collect()
    }

    #[test]
    fn every_change_round_trips_through_memory() {
        check_every_change_round_trips(&MemoryStore::new());
    }

    #[test]
    fn one_batch_equals_the_same_changes_in_steps() {
        let stepwise = MemoryStore::new();
        for step in steps() {
            stepwise.apply(&step.changes).expect("apply");
        }
        let at_once = MemoryStore::new();
        at_once.apply(&sample_changes()).expect("apply");
        assert_eq!(at_once.load().unwrap(), stepwise.load().unwrap());
        assert_eq!(at_once.stats_since(0).unwrap(), stepwise.stats_since(0).unwrap());
        assert_eq!(at_once.recent_requests(10).unwrap(), stepwise.recent_requests(10).unwrap());
    }

    #[test]
    fn the_request_log_keeps_the_newest_ten_thousand() {
        let store = MemoryStore::new();
        let total = MAX_REQUEST_RECORDS as u64 + 250;
        let records: Vec<Change> = (0..total).map(|n| Change::Request(request(n, None, 200, None))).collect();
        store.apply(&records).expect("apply");
        let kept = store.recent_requests(usize::MAX).expect("requests");
        assert_eq!(kept.len(), MAX_REQUEST_RECORDS);
        assert_eq!(kept.first().map(|record| record.at_ms), Some(total - 1));
        assert_eq!(kept.last().map(|record| record.at_ms), Some(total - MAX_REQUEST_RECORDS as u64));
    }
}
