//! The operator's dashboard (§3.2, §9): server-rendered pages behind a
//! password session. `docs/DASHBOARD.md` is the contract (routes, forms,
//! element ids); `views.rs` holds one askama struct per page, `pages.rs`
//! the handlers, `session.rs` the sessions, `settings.rs` the Settings
//! catalogue and save path, `assets.rs` the embedded CSS/JS/icon.

pub mod assets;
pub mod format;
pub mod pages;
pub mod password;
pub mod session;
pub mod settings;
pub mod text;
pub mod views;

use parking_lot::RwLock;

use crate::store::StoredCredential;

/// Dashboard state shared by all workers.
pub struct DashboardState {
    pub sessions: session::Sessions,
    /// The dashboard password: set here (hashed), `WEB_PASSWORD`, or none
    /// yet (the setup code); how candidates are checked.
    pub password: password::DashboardPassword,
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
            password: Default::default(),
            vertex: RwLock::new(VertexData::default()),
        }
    }
}

pub use pages::configure;
