//! Sources: where events come from. One folder per kind of source, holding its settings and
//! code, registered in [`SOURCE_TYPES`].

pub mod collectors;
pub mod file;
pub mod http_pull;
pub mod wazuh_api;
pub mod withsecure;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::pipeline::Emitter;
use crate::settings::AnySettings;
use crate::settings::error::{ConfigError, ParseFn, parse_at, report, unknown_type};
use crate::store::Store;

/// Every source type, by its `type:` name. A new source is a folder with its settings and code,
/// and one line here.
pub static SOURCE_TYPES: &[SourceType] = &[
    SourceType::new::<file::FileSourceConfig>("file"),
    SourceType::new::<withsecure::WithSecureConfig>("withsecure"),
    SourceType::new::<wazuh_api::WazuhApiConfig>("wazuh_api"),
    SourceType::new::<http_pull::HttpPullConfig>("http_pull"),
    SourceType::new::<collectors::Builtin<collectors::crowdstrike::CrowdStrike>>("crowdstrike"),
    SourceType::new::<collectors::Builtin<collectors::tenable::Tenable>>("tenable"),
    SourceType::new::<collectors::Builtin<collectors::okta::Okta>>("okta"),
    SourceType::new::<collectors::Builtin<collectors::snyk::Snyk>>("snyk"),
    SourceType::new::<collectors::Builtin<collectors::knowbe4::KnowBe4>>("knowbe4"),
    SourceType::new::<collectors::Builtin<collectors::okta_logs::OktaLogs>>("okta_logs"),
    SourceType::new::<collectors::Builtin<collectors::crowdstrike_alerts::CrowdStrikeAlerts>>("crowdstrike_alerts"),
    SourceType::new::<collectors::Builtin<collectors::graph_security::GraphSecurity>>("graph_security"),
    SourceType::new::<collectors::Builtin<collectors::aws_securityhub::AwsSecurityHub>>("aws_securityhub"),
    SourceType::new::<collectors::Builtin<collectors::prometheus::Prometheus>>("prometheus"),
    SourceType::new::<collectors::Builtin<collectors::kismet::Kismet>>("kismet"),
    SourceType::new::<collectors::Builtin<collectors::zabbix::Zabbix>>("zabbix"),
];

/// The `type:`-specific settings of a source: what its folder's `config.rs` deserializes.
pub trait SourceSettings: AnySettings + std::fmt::Debug + Send + Sync {
    /// Problems serde cannot see, each with the key it is at.
    fn problems(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Runs the source until `ctx.cancel` fires. Returns an error only for a failure that needs
    /// a restart; the runtime restarts it with backoff.
    fn run(&self, ctx: SourceContext) -> BoxFuture<'static, anyhow::Result<()>>;

    /// Collects once and returns, for `sluice collect` (cron and containers): each data set
    /// and how it went. `None` for sources that only run continuously (a tailed file).
    fn collect_once(&self, _ctx: SourceContext) -> Option<BoxFuture<'static, Vec<DataSetReport>>> {
        None
    }

    /// `sluice pull --dry-run`: logs the requests and prints up to `records` records of each
    /// data set (or only of `dataset`) to stdout, delivering and saving nothing. `None` for
    /// sources that do not pull.
    fn preview(&self, _ctx: SourceContext, _dataset: Option<String>, _records: usize) -> Option<BoxFuture<'static, anyhow::Result<()>>> {
        None
    }
}

/// What one data set of a one-off collection did.
#[derive(Debug)]
pub struct DataSetReport {
    pub tag: String,
    pub records: u64,
    pub took: std::time::Duration,
    pub result: anyhow::Result<()>,
}

impl PartialEq for dyn SourceSettings {
    fn eq(&self, other: &Self) -> bool {
        self.eq_any(other.as_any())
    }
}

impl dyn SourceSettings {
    /// Parses `value` as the settings of source type `kind`, recording errors at `path`.
    pub fn parse(kind: &str, value: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Arc<dyn SourceSettings>> {
        match SOURCE_TYPES.iter().find(|t| t.name == kind) {
            Some(t) => (t.parse)(value, path, errors),
            None => {
                let known: Vec<_> = SOURCE_TYPES.iter().map(|t| t.name).collect();
                errors.push(unknown_type(path, "source", kind, &known));
                None
            }
        }
    }

    /// The settings as their concrete type, if they are of it.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.as_any().downcast_ref()
    }
}

/// One entry of [`SOURCE_TYPES`].
pub struct SourceType {
    pub name: &'static str,
    parse: ParseFn<Arc<dyn SourceSettings>>,
}

impl SourceType {
    pub const fn new<T: SourceSettings + DeserializeOwned>(name: &'static str) -> SourceType {
        SourceType { name, parse: parse_settings::<T> }
    }
}

fn parse_settings<T: SourceSettings + DeserializeOwned>(
    value: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Arc<dyn SourceSettings>> {
    let settings: T = parse_at(value, path, errors)?;
    report(settings.problems(), path, errors).then(|| Arc::new(settings) as Arc<dyn SourceSettings>)
}

/// What a running source needs from the runtime.
#[derive(Clone)]
pub struct SourceContext {
    pub tenant: Arc<str>,
    pub source: Arc<str>,
    pub store: Store,
    pub emitter: Emitter,
    pub cancel: CancellationToken,
}

impl SourceContext {
    /// Sleeps; false if the source was cancelled meanwhile.
    pub async fn sleep(&self, d: std::time::Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.cancel.cancelled() => false,
        }
    }
}

/// A random duration below `max` (zero for zero): spreads tenants that share a schedule.
pub fn jitter(max: std::time::Duration) -> std::time::Duration {
    use rand::Rng;
    if max.is_zero() { max } else { rand::rng().random_range(std::time::Duration::ZERO..max) }
}
