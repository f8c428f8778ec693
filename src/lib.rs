//! hajimi: an OpenAI-compatible gateway to Google Gemini over a pool of API
//! keys. `main.rs` only parses arguments and calls [`startup::Application`];
//! ARCHITECTURE.md has the map.

pub mod auth;
pub mod bodylimit;
pub mod cache;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod cors;
pub mod dashboard;
pub mod delivery;
pub mod docs;
pub mod error;
pub mod fasthash;
pub mod gemini;
pub mod huggingface;
pub mod i18n;
pub mod iprange;
pub mod keys;
pub mod log_ring;
pub mod media;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod openai;
pub mod proxy;
pub mod ratelimit;
pub mod routes;
pub mod secret;
pub mod startup;
pub mod state;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod validator;
pub mod vertex;
