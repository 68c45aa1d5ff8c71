//! sluice: a multi-tenant security event collector and SIEM forwarder.
//!
//! Data flows through the modules in this order:
//! `sources` (collect) → `decode` (vendor bytes to [`model::Event`]) → `pipeline` (route, durable
//! hand-off, checkpoints) → `sinks` (deliver). `config` describes all of it, `store` keeps what must
//! survive a crash, `api` serves it over HTTP.

pub mod api;
pub mod config;
pub mod decode;
pub mod demo;
pub mod encode;
pub mod model;
pub mod names;
pub mod normalize;
pub mod pipeline;
pub mod service;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod testserver;
pub mod usage;
