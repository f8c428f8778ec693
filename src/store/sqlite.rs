//! The embedded store (§10): one SQLite file, `STORAGE_DIR/hajimi.db`,
//! readable by the owner only (mode 0600, as are its `-wal` and `-shm`
//! companions). Write-ahead logging with `synchronous=NORMAL` keeps every
//! committed transaction consistent across a `kill -9` (a power cut may
//! lose the last transactions, never the file). The schema is versioned
//! with `PRAGMA user_version` and migrated forward at open, one
//! transaction per step; a file from a newer hajimi is refused rather
//! than guessed at. One connection, behind a mutex: the only writer is the
//! [`super::writer::StoreWriter`] thread, and reads are rare (startup and
//! dashboard pages).

use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, ErrorCode, Transaction, TransactionBehavior};

use super::{
    Change, KeyAction, MinuteStats, RequestRecord, Snapshot, Store, StoreError, StoredCredential, StoredKeyHealth,
    StoredResponse, StoredUsage,
};

/// The database's file name inside `STORAGE_DIR`.
pub const DATABASE_FILE_NAME: &str = "hajimi.db";

/// How long a statement waits for a lock held by another connection (the
/// `import-settings` command while the server runs, for instance).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Room for every statement `apply`, `load` and the reads use, so none is
/// ever prepared twice.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// Schema steps: `MIGRATIONS[n]` takes a database from `user_version` n to
/// n + 1. Never edit a released step; append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE settings (
         name TEXT PRIMARY KEY NOT NULL,
         value TEXT NOT NULL
     );
     CREATE TABLE keys_added (
         key TEXT PRIMARY KEY NOT NULL,
         added_ms INTEGER NOT NULL,
         position INTEGER NOT NULL
     );
     CREATE INDEX keys_added_by_position ON keys_added (position);
     CREATE TABLE key_actions (
         key TEXT PRIMARY KEY NOT NULL,
         action TEXT NOT NULL
     );
     CREATE TABLE key_health (
         key TEXT PRIMARY KEY NOT NULL,
         invalid_reason TEXT NULL,
         last_validated_ms INTEGER NOT NULL
     );
     CREATE TABLE usage (
         key TEXT NOT NULL,
         model TEXT NOT NULL,
         day INTEGER NOT NULL,
         successes INTEGER NOT NULL,
         failures INTEGER NOT NULL,
         prompt_tokens INTEGER NOT NULL,
         completion_tokens INTEGER NOT NULL,
         PRIMARY KEY (key, model, day)
     );
     CREATE INDEX usage_by_day ON usage (day);
     CREATE TABLE model_limits (
         model TEXT PRIMARY KEY NOT NULL,
         daily_limit INTEGER NOT NULL
     );
     CREATE TABLE secrets (
         name TEXT PRIMARY KEY NOT NULL,
         value TEXT NOT NULL
     );
     CREATE TABLE vertex_credentials (
         client_email TEXT PRIMARY KEY NOT NULL,
         project_id TEXT NOT NULL,
         json TEXT NOT NULL
     );
     CREATE TABLE express_keys (
         key TEXT PRIMARY KEY NOT NULL,
         position INTEGER NOT NULL
     );
     CREATE TABLE minute_stats (
         minute INTEGER PRIMARY KEY NOT NULL,
         requests INTEGER NOT NULL,
         successes INTEGER NOT NULL,
         failures INTEGER NOT NULL,
         cache_hits INTEGER NOT NULL,
         prompt_tokens INTEGER NOT NULL,
         completion_tokens INTEGER NOT NULL,
         failures_by_kind TEXT NOT NULL DEFAULT '{}'
     );
     CREATE TABLE requests (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         at_ms INTEGER NOT NULL,
         method TEXT NOT NULL,
         route TEXT NOT NULL,
         model TEXT NOT NULL,
         key_id INTEGER NULL,
         status INTEGER NOT NULL,
         latency_ms INTEGER NOT NULL,
         prompt_tokens INTEGER NOT NULL,
         completion_tokens INTEGER NOT NULL,
         error_kind TEXT NULL
     );
     CREATE INDEX requests_by_time ON requests (at_ms);",
    // 2: responses of the OpenAI Responses door (`previous_response_id`,
    // `GET /v1/responses/{id}`), each bound to its client's scope digest.
    "CREATE TABLE responses (
         id TEXT PRIMARY KEY NOT NULL,
         scope TEXT NOT NULL,
         created_ms INTEGER NOT NULL,
         expires_ms INTEGER NOT NULL,
         body TEXT NOT NULL
     );
     CREATE INDEX responses_by_time ON responses (created_ms);",
];

/// The `secrets` row holding the dashboard password's PHC string.
const PASSWORD_HASH_SECRET_NAME: &str = "password_hash";

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    connection: Mutex<Connection>,
    database_path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating when missing) `directory/hajimi.db`, readable by the
    /// owner only, and migrates its schema to the current version. A
    /// directory or file that cannot be created or written is
    /// [`StoreError::Io`] naming the path; a file that is not a hajimi
    /// database, or is one from a newer hajimi, is
    /// [`StoreError::Incompatible`].
    pub fn open(directory: &Path) -> Result<SqliteStore, StoreError> {
        create_private_directory(directory)?;
        let database_path = directory.join(DATABASE_FILE_NAME);
        create_private_file(&database_path)?;
        let mut connection = Connection::open(&database_path).map_err(|error| database_error(&database_path, error))?;
        configure_connection(&connection, &database_path)?;
        // With WAL on, the `-wal` and `-shm` files exist now. SQLite gives
        // new ones the database file's mode; older ones are fixed here.
        for suffix in ["-wal", "-shm"] {
            let companion_path = path_with_suffix(&database_path, suffix);
            if companion_path.exists() {
                restrict_to_owner(&companion_path)?;
            }
        }
        migrate_schema(&mut connection, &database_path)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        Ok(SqliteStore { connection: Mutex::new(connection), database_path })
    }

    /// Where the database file is.
    pub fn database_path(&self) -> &Path {
        &self.database_path
    }

    /// SQLite's own consistency check: `"ok"` for a sound file, else its
    /// findings, one per line.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let connection = self.connection.lock();
        let findings = (|| {
            let mut statement = connection.prepare("PRAGMA integrity_check")?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            rows.collect::<Result<Vec<String>, _>>()
        })()
        .map_err(|error| self.error(error))?;
        Ok(findings.join("\n"))
    }

    fn error(&self, error: rusqlite::Error) -> StoreError {
        database_error(&self.database_path, error)
    }
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let mut connection = self.connection.lock();
        // One read transaction: every table as of the same instant.
        let transaction = connection.transaction().map_err(|error| self.error(error))?;
        let snapshot = load_snapshot(&transaction).map_err(|error| self.error(error))?;
        transaction.commit().map_err(|error| self.error(error))?;
        Ok(snapshot)
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let now_ms = crate::clock::unix_ms();
        let mut connection = self.connection.lock();
        let transaction =
            connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|error| self.error(error))?;
        for change in changes {
            apply_change(&transaction, change, now_ms).map_err(|error| self.error(error))?;
        }
        // Dropping the transaction on an error above rolls it back.
        transaction.commit().map_err(|error| self.error(error))
    }

    fn stats_since(&self, since_minute: u64) -> Result<Vec<MinuteStats>, StoreError> {
        let connection = self.connection.lock();
        (|| {
            let mut statement = connection.prepare_cached(
                "SELECT minute, requests, successes, failures, cache_hits, prompt_tokens, completion_tokens,
                        failures_by_kind
                 FROM minute_stats WHERE minute >= ?1 ORDER BY minute",
            )?;
            let rows = statement.query_map([to_sql_integer(since_minute)], minute_stats_from_row)?;
            rows.collect::<Result<Vec<_>, _>>()
        })()
        .map_err(|error| self.error(error))
    }

    fn recent_requests(&self, limit: usize) -> Result<Vec<RequestRecord>, StoreError> {
        let connection = self.connection.lock();
        (|| {
            let mut statement = connection.prepare_cached(
                "SELECT at_ms, method, route, model, key_id, status, latency_ms, prompt_tokens, completion_tokens,
                        error_kind
                 FROM requests ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], request_record_from_row)?;
            rows.collect::<Result<Vec<_>, _>>()
        })()
        .map_err(|error| self.error(error))
    }

    fn response(&self, id: &str, scope: &str) -> Result<Option<StoredResponse>, StoreError> {
        let connection = self.connection.lock();
        (|| {
            let mut statement = connection.prepare_cached(
                "SELECT id, scope, created_ms, expires_ms, body FROM responses WHERE id = ?1 AND scope = ?2",
            )?;
            let mut rows = statement.query_map(params![id, scope], |row| {
                Ok(StoredResponse {
                    id: row.get(0)?,
                    scope: row.get(1)?,
                    created_ms: from_sql_integer(row.get(2)?),
                    expires_ms: from_sql_integer(row.get(3)?),
                    body: row.get(4)?,
                })
            })?;
            rows.next().transpose()
        })()
        .map_err(|error| self.error(error))
    }
}

/// Creates `directory` (and its parents) when missing; new directories
/// are private to the owner on unix.
fn create_private_directory(directory: &Path) -> Result<(), StoreError> {
    if directory.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(directory).map_err(|error| io_error("cannot create the storage directory", directory, error))
}

/// Creates the database file with mode 0600 before SQLite opens it, so it
/// is never readable by others, and narrows an existing file's mode.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|error| io_error("cannot create or write the database file", path, error))?;
    restrict_to_owner(path)
}

fn restrict_to_owner(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|error| io_error("cannot make this file private (mode 0600)", path, error))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn path_with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn configure_connection(connection: &Connection, database_path: &Path) -> Result<(), StoreError> {
    let journal_mode = (|| {
        connection.busy_timeout(BUSY_TIMEOUT)?;
        let journal_mode: String = connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        Ok(journal_mode)
    })()
    .map_err(|error| database_error(database_path, error))?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io(format!(
            "{}: write-ahead logging is not available (journal mode stays {journal_mode})",
            database_path.display()
        )));
    }
    Ok(())
}

/// Applies the missing [`MIGRATIONS`] steps, each in its own immediate
/// transaction that re-reads the version, so two processes opening the
/// same file at once cannot both apply a step.
fn migrate_schema(connection: &mut Connection, database_path: &Path) -> Result<(), StoreError> {
    let known_version = MIGRATIONS.len();
    loop {
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| database_error(database_path, error))?;
        let version: i64 = transaction
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|error| database_error(database_path, error))?;
        let version = match usize::try_from(version) {
            Ok(version) if version <= known_version => version,
            _ => {
                return Err(StoreError::Incompatible(format!(
                    "{} has schema version {version}; this hajimi knows versions up to {known_version}",
                    database_path.display()
                )))
            }
        };
        if version == known_version {
            return Ok(());
        }
        let step = (|| {
            transaction.execute_batch(MIGRATIONS[version])?;
            transaction.pragma_update(None, "user_version", version as i64 + 1)?;
            transaction.commit()
        })();
        step.map_err(|error| database_error(database_path, error))?;
        log::info!("storage: {} migrated to schema version {}", database_path.display(), version + 1);
    }
}

fn load_snapshot(transaction: &Transaction<'_>) -> rusqlite::Result<Snapshot> {
    let mut snapshot = Snapshot::default();

    let mut statement = transaction.prepare_cached("SELECT name, value FROM settings")?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
    snapshot.setting_overrides = rows.collect::<Result<_, _>>()?;

    let mut statement = transaction.prepare_cached("SELECT key FROM keys_added ORDER BY position")?;
    snapshot.added_keys = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;

    let mut statement = transaction.prepare_cached("SELECT key, action FROM key_actions")?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
    for row in rows {
        let (key, action_text) = row?;
        match key_action_from_text(&action_text) {
            Some(action) => {
                snapshot.key_actions.insert(key, action);
            }
            None => log::warn!("storage: ignoring an unknown key action {action_text:?}"),
        }
    }

    let mut statement =
        transaction.prepare_cached("SELECT key, invalid_reason, last_validated_ms FROM key_health ORDER BY key")?;
    let rows = statement.query_map([], |row| {
        Ok(StoredKeyHealth {
            key: row.get(0)?,
            invalid_reason: row.get(1)?,
            last_validated_ms: from_sql_integer(row.get(2)?),
        })
    })?;
    snapshot.key_health = rows.collect::<Result<_, _>>()?;

    let mut statement = transaction.prepare_cached(
        "SELECT key, model, day, successes, failures, prompt_tokens, completion_tokens FROM usage
         WHERE day = (SELECT MAX(day) FROM usage) ORDER BY key, model",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(StoredUsage {
            key: row.get(0)?,
            model: row.get(1)?,
            pacific_day: row.get(2)?,
            successes: from_sql_integer(row.get(3)?),
            failures: from_sql_integer(row.get(4)?),
            prompt_tokens: from_sql_integer(row.get(5)?),
            completion_tokens: from_sql_integer(row.get(6)?),
        })
    })?;
    snapshot.usage = rows.collect::<Result<_, _>>()?;

    let mut statement = transaction.prepare_cached("SELECT model, daily_limit FROM model_limits")?;
    let rows = statement.query_map([], |row| {
        let limit: i64 = row.get(1)?;
        Ok((row.get::<_, String>(0)?, u32::try_from(limit.max(0)).unwrap_or(u32::MAX)))
    })?;
    snapshot.model_limits = rows.collect::<Result<_, _>>()?;

    let mut statement = transaction.prepare_cached("SELECT value FROM secrets WHERE name = ?1")?;
    let mut rows = statement.query_map([PASSWORD_HASH_SECRET_NAME], |row| row.get(0))?;
    snapshot.password_hash = rows.next().transpose()?;
    drop(rows);

    let mut statement =
        transaction.prepare_cached("SELECT client_email, project_id, json FROM vertex_credentials ORDER BY rowid")?;
    let rows = statement.query_map([], |row| {
        Ok(StoredCredential { client_email: row.get(0)?, project_id: row.get(1)?, json: row.get(2)? })
    })?;
    snapshot.credentials = rows.collect::<Result<_, _>>()?;

    let mut statement = transaction.prepare_cached("SELECT key FROM express_keys ORDER BY position")?;
    snapshot.express_keys = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;

    Ok(snapshot)
}

fn apply_change(transaction: &Transaction<'_>, change: &Change, now_ms: u64) -> rusqlite::Result<()> {
    match change {
        Change::SetSetting { name, value } => {
            transaction
                .prepare_cached(
                    "INSERT INTO settings (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![name, value])?;
        }
        Change::RemoveSetting { name } => {
            transaction.prepare_cached("DELETE FROM settings WHERE name = ?1")?.execute([name])?;
        }
        Change::AddKeys(keys) => add_keys(transaction, keys, now_ms)?,
        Change::SetKeyAction { key, action: Some(action) } => {
            transaction
                .prepare_cached(
                    "INSERT INTO key_actions (key, action) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET action = excluded.action",
                )?
                .execute(params![key, key_action_text(*action)])?;
        }
        Change::SetKeyAction { key, action: None } => {
            transaction.prepare_cached("DELETE FROM key_actions WHERE key = ?1")?.execute([key])?;
        }
        Change::KeyHealth(health) => {
            transaction
                .prepare_cached(
                    "INSERT INTO key_health (key, invalid_reason, last_validated_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET invalid_reason = excluded.invalid_reason,
                                                     last_validated_ms = excluded.last_validated_ms",
                )?
                .execute(params![health.key, health.invalid_reason, to_sql_integer(health.last_validated_ms)])?;
        }
        Change::Usage(usage) => {
            transaction
                .prepare_cached(
                    "INSERT INTO usage (key, model, day, successes, failures, prompt_tokens, completion_tokens)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (key, model, day) DO UPDATE SET
                         successes = excluded.successes, failures = excluded.failures,
                         prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens",
                )?
                .execute(params![
                    usage.key,
                    usage.model,
                    usage.pacific_day,
                    to_sql_integer(usage.successes),
                    to_sql_integer(usage.failures),
                    to_sql_integer(usage.prompt_tokens),
                    to_sql_integer(usage.completion_tokens),
                ])?;
        }
        Change::SetModelLimit { model, limit: Some(limit) } => {
            transaction
                .prepare_cached(
                    "INSERT INTO model_limits (model, daily_limit) VALUES (?1, ?2)
                     ON CONFLICT (model) DO UPDATE SET daily_limit = excluded.daily_limit",
                )?
                .execute(params![model, limit])?;
        }
        Change::SetModelLimit { model, limit: None } => {
            transaction.prepare_cached("DELETE FROM model_limits WHERE model = ?1")?.execute([model])?;
        }
        Change::SetPasswordHash(hash) => {
            transaction
                .prepare_cached(
                    "INSERT INTO secrets (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![PASSWORD_HASH_SECRET_NAME, hash])?;
        }
        Change::AddCredential(credential) => {
            // An update keeps the row (and so its place in the list).
            transaction
                .prepare_cached(
                    "INSERT INTO vertex_credentials (client_email, project_id, json) VALUES (?1, ?2, ?3)
                     ON CONFLICT (client_email) DO UPDATE SET project_id = excluded.project_id,
                                                              json = excluded.json",
                )?
                .execute(params![credential.client_email, credential.project_id, credential.json])?;
        }
        Change::RemoveCredential { client_email } => {
            transaction
                .prepare_cached("DELETE FROM vertex_credentials WHERE client_email = ?1")?
                .execute([client_email])?;
        }
        Change::AddExpressKey(key) => {
            let next_position: i64 = transaction
                .prepare_cached("SELECT COALESCE(MAX(position), 0) + 1 FROM express_keys")?
                .query_row([], |row| row.get(0))?;
            transaction
                .prepare_cached(
                    "INSERT INTO express_keys (key, position) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                )?
                .execute(params![key, next_position])?;
        }
        Change::RemoveExpressKey(key) => {
            transaction.prepare_cached("DELETE FROM express_keys WHERE key = ?1")?.execute([key])?;
        }
        Change::MinuteStats(stats) => {
            let failures_by_kind =
                serde_json::to_string(&stats.failures_by_kind).unwrap_or_else(|_| String::from("{}"));
            transaction
                .prepare_cached(
                    "INSERT INTO minute_stats (minute, requests, successes, failures, cache_hits, prompt_tokens,
                                               completion_tokens, failures_by_kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (minute) DO UPDATE SET
                         requests = excluded.requests, successes = excluded.successes,
                         failures = excluded.failures, cache_hits = excluded.cache_hits,
                         prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
                         failures_by_kind = excluded.failures_by_kind",
                )?
                .execute(params![
                    to_sql_integer(stats.minute),
                    to_sql_integer(stats.requests),
                    to_sql_integer(stats.successes),
                    to_sql_integer(stats.failures),
                    to_sql_integer(stats.cache_hits),
                    to_sql_integer(stats.prompt_tokens),
                    to_sql_integer(stats.completion_tokens),
                    failures_by_kind,
                ])?;
        }
        Change::Request(record) => {
            transaction
                .prepare_cached(
                    "INSERT INTO requests (at_ms, method, route, model, key_id, status, latency_ms, prompt_tokens,
                                           completion_tokens, error_kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    to_sql_integer(record.at_ms),
                    record.method,
                    record.route,
                    record.model,
                    record.key_id,
                    record.status,
                    to_sql_integer(record.latency_ms),
                    to_sql_integer(record.prompt_tokens),
                    to_sql_integer(record.completion_tokens),
                    record.error_kind,
                ])?;
        }
        // Shared between replicas only; a single node keeps these in memory.
        Change::SessionStarted { .. }
        | Change::SessionEnded { .. }
        | Change::PasswordChangedIn { .. }
        | Change::KeyCooling { .. }
        | Change::KeyExhausted { .. }
        | Change::AddressLockedOut { .. } => {}
        Change::Prune { stats_before_minute, requests_before_ms } => {
            transaction
                .prepare_cached("DELETE FROM minute_stats WHERE minute < ?1")?
                .execute([to_sql_integer(*stats_before_minute)])?;
            transaction
                .prepare_cached("DELETE FROM requests WHERE at_ms < ?1")?
                .execute([to_sql_integer(*requests_before_ms)])?;
        }
        Change::SaveResponse(response) => {
            transaction
                .prepare_cached(
                    "INSERT INTO responses (id, scope, created_ms, expires_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET scope = excluded.scope, created_ms = excluded.created_ms,
                                                    expires_ms = excluded.expires_ms, body = excluded.body",
                )?
                .execute(params![
                    response.id,
                    response.scope,
                    to_sql_integer(response.created_ms),
                    to_sql_integer(response.expires_ms),
                    response.body,
                ])?;
        }
        Change::DeleteResponse { id, scope } => {
            transaction
                .prepare_cached("DELETE FROM responses WHERE id = ?1 AND scope = ?2")?
                .execute(params![id, scope])?;
        }
        Change::PruneResponses { before_ms } => {
            transaction
                .prepare_cached("DELETE FROM responses WHERE created_ms < ?1")?
                .execute([to_sql_integer(*before_ms)])?;
        }
    }
    Ok(())
}

/// New keys go to the end of the list; a key already there keeps its
/// place. Adding a key clears a `Deleted` action on it (the lookup is
/// skipped when no key is marked deleted, the common bulk-add case).
fn add_keys(transaction: &Transaction<'_>, keys: &[String], now_ms: u64) -> rusqlite::Result<()> {
    let mut next_position: i64 = transaction
        .prepare_cached("SELECT COALESCE(MAX(position), 0) + 1 FROM keys_added")?
        .query_row([], |row| row.get(0))?;
    let any_key_deleted: bool = transaction
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM key_actions WHERE action = ?1)")?
        .query_row([key_action_text(KeyAction::Deleted)], |row| row.get(0))?;
    let mut insert = transaction.prepare_cached(
        "INSERT INTO keys_added (key, added_ms, position) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
    )?;
    let mut clear_deleted = if any_key_deleted {
        Some(transaction.prepare_cached("DELETE FROM key_actions WHERE key = ?1 AND action = ?2")?)
    } else {
        None
    };
    let added_ms = to_sql_integer(now_ms);
    for key in keys {
        if insert.execute(params![key, added_ms, next_position])? > 0 {
            next_position += 1;
        }
        if let Some(clear_deleted) = clear_deleted.as_mut() {
            clear_deleted.execute(params![key, key_action_text(KeyAction::Deleted)])?;
        }
    }
    Ok(())
}

fn minute_stats_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MinuteStats> {
    let failures_by_kind_json: String = row.get(7)?;
    let minute = from_sql_integer(row.get(0)?);
    let failures_by_kind = serde_json::from_str(&failures_by_kind_json).unwrap_or_else(|error| {
        log::warn!("storage: unreadable failure counts of minute {minute} ({error}); shown as none");
        Default::default()
    });
    Ok(MinuteStats {
        minute,
        requests: from_sql_integer(row.get(1)?),
        successes: from_sql_integer(row.get(2)?),
        failures: from_sql_integer(row.get(3)?),
        cache_hits: from_sql_integer(row.get(4)?),
        prompt_tokens: from_sql_integer(row.get(5)?),
        completion_tokens: from_sql_integer(row.get(6)?),
        failures_by_kind,
    })
}

fn request_record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRecord> {
    let key_id: Option<i64> = row.get(4)?;
    let status: i64 = row.get(5)?;
    Ok(RequestRecord {
        at_ms: from_sql_integer(row.get(0)?),
        method: row.get(1)?,
        route: row.get(2)?,
        model: row.get(3)?,
        key_id: key_id.and_then(|id| u32::try_from(id).ok()),
        status: u16::try_from(status).unwrap_or(0),
        latency_ms: from_sql_integer(row.get(6)?),
        prompt_tokens: from_sql_integer(row.get(7)?),
        completion_tokens: from_sql_integer(row.get(8)?),
        error_kind: row.get(9)?,
    })
}

fn key_action_text(action: KeyAction) -> &'static str {
    match action {
        KeyAction::Disabled => "disabled",
        KeyAction::Deleted => "deleted",
    }
}

fn key_action_from_text(text: &str) -> Option<KeyAction> {
    match text {
        "disabled" => Some(KeyAction::Disabled),
        "deleted" => Some(KeyAction::Deleted),
        _ => None,
    }
}

/// SQLite integers are signed 64-bit; counters beyond that saturate.
fn to_sql_integer(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql_integer(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn io_error(what: &str, path: &Path, error: impl Display) -> StoreError {
    StoreError::Io(format!("{what} {}: {error}", path.display()))
}

/// A file that is not a database (or a damaged one) is `Incompatible`;
/// anything else (permissions, full disk, locks) is `Io`. SQLite's
/// messages name tables and columns, never the values.
fn database_error(database_path: &Path, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Incompatible(format!("{}: {error}", database_path.display()))
        }
        _ => StoreError::Io(format!("{}: {error}", database_path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::tests::{
        check_every_change_round_trips, check_responses_round_trip, sample_changes, stored_response,
    };
    use crate::store::writer::StoreWriter;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TemporaryDirectory(PathBuf);

    impl TemporaryDirectory {
        fn new(label: &str) -> TemporaryDirectory {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            let path = std::env::temp_dir().join(format!(
                "hajimi-store-{label}-{}-{nanos}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&path).expect("create a temporary directory");
            TemporaryDirectory(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TemporaryDirectory {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn set_user_version(directory: &Path, version: i64) {
        let connection = Connection::open(directory.join(DATABASE_FILE_NAME)).expect("open directly");
        connection.pragma_update(None, "user_version", version).expect("set user_version");
    }

    fn user_version(directory: &Path) -> i64 {
        let connection = Connection::open(directory.join(DATABASE_FILE_NAME)).expect("open directly");
        connection.pragma_query_value(None, "user_version", |row| row.get(0)).expect("read user_version")
    }

    #[test]
    fn every_change_round_trips_through_sqlite() {
        let directory = TemporaryDirectory::new("round-trip");
        let store = SqliteStore::open(directory.path()).expect("open");
        check_every_change_round_trips(&store);
    }

    #[test]
    fn stored_responses_round_trip_through_sqlite_and_survive_a_reopen() {
        let directory = TemporaryDirectory::new("responses");
        let store = SqliteStore::open(directory.path()).expect("open");
        check_responses_round_trip(&store);
        let kept = stored_response("resp_kept", "scope", 9_000, r#"{"output":[]}"#);
        store.apply(&[Change::SaveResponse(kept.clone().into())]).expect("apply");
        drop(store);
        let store = SqliteStore::open(directory.path()).expect("reopen");
        assert_eq!(store.response("resp_kept", "scope").expect("read"), Some(kept));
    }

    #[test]
    fn a_first_version_database_gains_the_responses_table() {
        let directory = TemporaryDirectory::new("migrate-responses");
        drop(SqliteStore::open(directory.path()).expect("open"));
        {
            let connection = Connection::open(directory.path().join(DATABASE_FILE_NAME)).expect("open directly");
            connection.execute_batch("DROP TABLE responses").expect("drop");
        }
        set_user_version(directory.path(), 1);
        let store = SqliteStore::open(directory.path()).expect("migrates");
        assert_eq!(user_version(directory.path()), MIGRATIONS.len() as i64);
        check_responses_round_trip(&store);
    }

    #[test]
    fn a_reopened_database_holds_the_same_state_and_migrations_run_once() {
        let directory = TemporaryDirectory::new("reopen");
        let (snapshot, stats, requests) = {
            let store = SqliteStore::open(directory.path()).expect("first open");
            store.apply(&sample_changes()).expect("apply");
            (store.load().expect("load"), store.stats_since(0).expect("stats"), store.recent_requests(100).unwrap())
        };
        assert!(!snapshot.added_keys.is_empty() && !stats.is_empty() && !requests.is_empty());
        for attempt in 1..=3 {
            let store = SqliteStore::open(directory.path()).expect("reopen");
            assert_eq!(store.load().expect("load"), snapshot, "open #{attempt}");
            assert_eq!(store.stats_since(0).expect("stats"), stats, "open #{attempt}");
            assert_eq!(store.recent_requests(100).expect("requests"), requests, "open #{attempt}");
            assert_eq!(store.integrity_check().expect("integrity"), "ok");
            drop(store);
            assert_eq!(user_version(directory.path()), MIGRATIONS.len() as i64, "open #{attempt}");
        }
    }

    #[test]
    fn open_refuses_what_it_cannot_use_without_panicking() {
        enum Expected {
            Io,
            Incompatible,
        }
        /// Prepares a fresh directory and returns the path to open.
        type Prepare = fn(&Path) -> PathBuf;
        // (case, preparation, expected error)
        let cases: [(&str, Prepare, Expected); 4] = [
            (
                "a path under a regular file",
                |root| {
                    fs::write(root.join("plain-file"), b"not a directory").unwrap();
                    root.join("plain-file").join("storage")
                },
                Expected::Io,
            ),
            (
                "the database path is a directory",
                |root| {
                    fs::create_dir_all(root.join(DATABASE_FILE_NAME)).unwrap();
                    root.to_path_buf()
                },
                Expected::Io,
            ),
            (
                "the database file is not a database",
                |root| {
                    fs::write(root.join(DATABASE_FILE_NAME), vec![b'x'; 8192]).unwrap();
                    root.to_path_buf()
                },
                Expected::Incompatible,
            ),
            (
                "a schema version newer than known",
                |root| {
                    drop(SqliteStore::open(root).unwrap());
                    set_user_version(root, MIGRATIONS.len() as i64 + 1);
                    root.to_path_buf()
                },
                Expected::Incompatible,
            ),
        ];
        for (case, prepare, expected) in cases {
            let directory = TemporaryDirectory::new("refused");
            let path_to_open = prepare(directory.path());
            let error = SqliteStore::open(&path_to_open).err().unwrap_or_else(|| panic!("{case}: opened"));
            let message = error.to_string();
            match (expected, &error) {
                (Expected::Io, StoreError::Io(_)) | (Expected::Incompatible, StoreError::Incompatible(_)) => {}
                _ => panic!("{case}: unexpected error {error:?}"),
            }
            assert!(message.contains(&*path_to_open.to_string_lossy()), "{case}: {message:?} names no path");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_database_and_its_companions_are_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let directory = TemporaryDirectory::new("mode");
        // A wider mode left over from elsewhere is narrowed at open.
        let stale_database = directory.path().join(DATABASE_FILE_NAME);
        fs::write(&stale_database, b"").unwrap();
        fs::set_permissions(&stale_database, fs::Permissions::from_mode(0o644)).unwrap();
        let store = SqliteStore::open(directory.path()).expect("open");
        store.apply(&sample_changes()).expect("apply");
        for suffix in ["", "-wal", "-shm"] {
            let path = path_with_suffix(store.database_path(), suffix);
            let mode = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
        // A directory the store creates is private too.
        let created = directory.path().join("created");
        drop(SqliteStore::open(&created).expect("open in a new directory"));
        assert_eq!(fs::metadata(&created).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn one_hundred_thousand_keys_are_added_in_one_batch_and_load_in_order() {
        let directory = TemporaryDirectory::new("bulk");
        let store = SqliteStore::open(directory.path()).expect("open");
        let keys: Vec<String> = (0..100_000).map(|n| format!("AIzaTestKey{n:0>28}")).collect();
        let started = Instant::now();
        store.apply(&[Change::AddKeys(keys.clone())]).expect("bulk add");
        let applied = started.elapsed();
        let snapshot = store.load().expect("load");
        eprintln!("bulk add of {} keys: apply {applied:?}, apply + load {:?}", keys.len(), started.elapsed());
        assert_eq!(snapshot.added_keys, keys);
        // Adding them again (plus one) keeps every place and appends the new one.
        let mut again = keys.clone();
        again.insert(0, format!("AIzaTestKey{:0>28}", 100_000));
        store.apply(&[Change::AddKeys(again)]).expect("bulk add again");
        let reloaded = store.load().expect("load again").added_keys;
        assert_eq!(&reloaded[..100_000], &keys[..]);
        assert_eq!(reloaded[100_000], format!("AIzaTestKey{:0>28}", 100_000));
    }

    /// Set in the child process of the crash test: the directory to write to.
    const CRASH_CHILD_VARIABLE: &str = "HAJIMI_STORE_CRASH_CHILD";
    /// Created by the child once its first batch is on disk.
    const CRASH_CHILD_WRITING_MARKER: &str = "writing";

    /// The child's half: writes usage rows and minute stats through a
    /// `StoreWriter` until it is killed.
    fn write_until_killed(directory: &Path) -> ! {
        let store = SqliteStore::open(directory).expect("child: open");
        let writer = StoreWriter::start(Arc::new(store));
        for round in 0u64.. {
            let changes = (0..2_000u64)
                .map(|n| {
                    if n % 2 == 0 {
                        Change::Usage(StoredUsage {
                            key: format!("AIzaCrashKey{:0>27}", n % 500),
                            model: format!("gemini-model-{}", n % 7),
                            pacific_day: 20_000 + (round % 3) as i64,
                            successes: round,
                            failures: n,
                            prompt_tokens: round * n,
                            completion_tokens: n,
                        })
                    } else {
                        Change::MinuteStats(MinuteStats {
                            minute: round * 1_000 + n,
                            requests: n,
                            failures_by_kind: [("quota".to_owned(), round)].into_iter().collect(),
                            ..MinuteStats::default()
                        })
                    }
                })
                .collect();
            writer.send_all(changes);
            writer.flush();
            if round == 0 {
                fs::write(directory.join(CRASH_CHILD_WRITING_MARKER), b"").expect("child: marker");
                println!("child: writing");
            }
        }
        unreachable!("the child writes until it is killed")
    }

    #[test]
    fn a_writer_killed_mid_batch_leaves_a_sound_database() {
        if let Some(directory) = std::env::var_os(CRASH_CHILD_VARIABLE) {
            write_until_killed(Path::new(&directory));
        }
        let directory = TemporaryDirectory::new("crash");
        let module_path = module_path!();
        let test_name = format!(
            "{}::a_writer_killed_mid_batch_leaves_a_sound_database",
            module_path.split_once("::").map_or(module_path, |(_, rest)| rest)
        );
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([test_name.as_str(), "--exact", "--nocapture"])
            .env(CRASH_CHILD_VARIABLE, directory.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the child");
        let waiting_since = Instant::now();
        while !directory.path().join(CRASH_CHILD_WRITING_MARKER).exists() {
            if let Some(status) = child.try_wait().expect("child status") {
                panic!("the child ended before writing: {status}");
            }
            if waiting_since.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child did not start writing within 120 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(300));
        child.kill().expect("SIGKILL the child");
        let status = child.wait().expect("reap the child");
        assert!(!status.success(), "the child was killed, not finished: {status}");

        let store = SqliteStore::open(directory.path()).expect("open after the crash");
        assert_eq!(store.integrity_check().expect("integrity check"), "ok");
        let snapshot = store.load().expect("load after the crash");
        assert!(!snapshot.usage.is_empty(), "usage rows survive");
        assert!(!store.stats_since(0).expect("stats after the crash").is_empty(), "minute stats survive");
    }
}
