//! sluice: a multi-tenant security event collector and SIEM forwarder.
//!
//! Data flows through the modules in this order:
//! `sources` (collect) → `decode` (a line to [`event::Event`]s, per [`vendors`]) → `pipeline`
//! (route, durable hand-off, checkpoints) → `sinks` (deliver, with `normalize` and `encode` when
//! a format needs the [`model`]). `config` describes all of it, `store` keeps what must survive a
//! crash, `api` serves it over HTTP, `daemon` runs it all and `cli` is the command line.
//!
//! Start reading at the leaves, which import nothing of the components: [`event`] (the envelope),
//! [`model`] (the security-event model), [`settings`] (config errors, durations, secrets, TLS,
//! path templates) and [`schemas`].

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod decode;
#[cfg(feature = "demo")]
pub mod demo;
pub mod encode;
pub mod event;
pub mod model;
pub mod names;
pub mod normalize;
pub mod notify;
pub mod pipeline;
pub mod schemas;
pub mod service;
pub mod settings;
pub mod sinks;
pub mod snapshot;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod testserver;
pub mod usage;
pub mod vendors;
