//! Integration tests: the real application over real sockets, in front of
//! a fake Gemini upstream. One binary (faster to build and link).

mod binary;
mod capacity;
mod chat;
mod cluster;
mod dashboard;
mod docs;
mod faults;
mod hardening;
mod helpers;
mod messages;
mod metrics;
mod native;
mod operator;
mod pool;
mod proxy;
mod responses;
mod sdk;
mod sdk_anthropic;
mod sdk_openai;
mod security;
mod shutdown;
mod streaming;
mod surface;
mod vertex;
