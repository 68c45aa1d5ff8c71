//! Sources: where events come from. One folder per kind of source, holding its config and code.

pub mod file;
pub mod wazuh_api;
pub mod withsecure;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, parse_at, unknown_type};
use crate::pipeline::Emitter;
use crate::store::Store;

/// The `type:`-specific part of a source's config.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSettings {
    File(file::FileSourceConfig),
    WithSecure(withsecure::WithSecureConfig),
    WazuhApi(wazuh_api::WazuhApiConfig),
}

impl SourceSettings {
    pub const TYPES: &[&str] = &["file", "withsecure", "wazuh_api"];

    pub fn parse(kind: &str, value: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Self> {
        match kind {
            "file" => parse_at(value, path, errors).map(SourceSettings::File),
            "withsecure" => {
                let config: withsecure::WithSecureConfig = parse_at(value, path, errors)?;
                let problems = config.problems();
                for (field, reason) in &problems {
                    errors.push(ConfigError::at(format!("{path}.{field}"), reason.clone()));
                }
                problems.is_empty().then_some(SourceSettings::WithSecure(config))
            }
            "wazuh_api" => {
                let config: wazuh_api::WazuhApiConfig = parse_at(value, path, errors)?;
                let problems = config.problems();
                for (field, reason) in &problems {
                    errors.push(ConfigError::at(format!("{path}.{field}"), reason.clone()));
                }
                problems.is_empty().then_some(SourceSettings::WazuhApi(config))
            }
            other => {
                errors.push(unknown_type(path, "source", other, Self::TYPES));
                None
            }
        }
    }

    /// Runs the source until `ctx.cancel` fires. Returns an error only for a failure that needs a
    /// restart; the caller restarts it with backoff.
    pub fn run(&self, ctx: SourceContext) -> BoxFuture<'static, anyhow::Result<()>> {
        match self {
            SourceSettings::File(c) => Box::pin(file::run(c.clone(), ctx)),
            SourceSettings::WithSecure(c) => Box::pin(withsecure::run(c.clone(), ctx)),
            SourceSettings::WazuhApi(c) => Box::pin(wazuh_api::run(c.clone(), ctx)),
        }
    }
}

/// What a running source needs from the runtime.
#[derive(Clone)]
pub struct SourceContext {
    pub tenant: Arc<str>,
    pub source: Arc<str>,
    pub store: Store,
    pub emitter: Emitter,
    pub cancel: CancellationToken,
    /// True the first time this source runs in this process (at start, or when a reload added
    /// it). Start modes such as `start_mode: now` apply only then.
    pub first_run_in_process: bool,
}
