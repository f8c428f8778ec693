//! The operator's state below the pages: dashboard sessions, the
//! dashboard password (and first-run setup code), and the Vertex
//! credentials added in the dashboard. The dashboard's pages, the cluster
//! and `operations` change it; `AppState` holds it.

pub mod password;
pub mod session;

use parking_lot::RwLock;

use crate::store::StoredCredential;

/// The operator's state shared by all workers.
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
