//! The operator's dashboard (§3.2, §9): server-rendered pages behind a
//! password session. `docs/DASHBOARD.md` is the contract (routes, forms,
//! element ids); `views.rs` holds one askama struct per page, `pages.rs`
//! the handlers, `session.rs` the sessions, `settings.rs` the Settings
//! catalogue and save path, `assets.rs` the embedded CSS/JS/icon.

pub mod assets;
pub mod pages;
pub mod session;
pub mod settings;
pub mod views;

use parking_lot::RwLock;

use crate::store::StoredCredential;
use crate::throttle::FailureThrottle;

/// Dashboard state shared by all workers.
pub struct DashboardState {
    pub sessions: session::Sessions,
    /// Failed logins per address (the API's mechanism, its own table).
    pub login_failures: FailureThrottle,
    /// argon2id PHC string of the password set in the dashboard; `None`
    /// while `WEB_PASSWORD` (or `PASSWORD`) is used.
    pub password_hash: RwLock<Option<String>>,
    pub vertex: RwLock<VertexData>,
}

/// Vertex credentials and Express keys added in the dashboard.
#[derive(Default)]
pub struct VertexData {
    pub credentials: Vec<StoredCredential>,
    pub express_keys: Vec<String>,
}

impl Default for DashboardState {
    fn default() -> DashboardState {
        DashboardState {
            sessions: Default::default(),
            login_failures: FailureThrottle::new(100_000),
            password_hash: RwLock::new(None),
            vertex: RwLock::new(VertexData::default()),
        }
    }
}

pub use pages::configure;
