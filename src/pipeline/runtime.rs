//! Starts what a [`Config`] describes, applies a new config as a difference (hot reload), and
//! stops everything in order (graceful shutdown).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Emitter, SinkMap, sink_worker};
use crate::config::{Config, SinkConfig, TenantConfig};
use crate::sinks::status::{SinkStatus, StatusMap};
use crate::usage::UsageMeter;

/// Each tenant's sink names, by tenant.
pub type Routes = Arc<RwLock<HashMap<String, Vec<String>>>>;

/// Shared handles on the running system, for the API.
#[derive(Clone)]
pub struct RuntimeView {
    pub store: Store,
    pub sinks: SinkMap,
    pub statuses: StatusMap,
    pub routes: Routes,
    pub usage: Arc<UsageMeter>,
}

impl RuntimeView {
    /// An emitter for a tenant's events, or None if the tenant is not configured.
    pub fn emitter(&self, tenant: &str) -> Option<Emitter> {
        let routes = self.routes.read().expect("routes poisoned").get(tenant).cloned()?;
        Some(Emitter::new(self.sinks.clone(), routes, self.usage.clone()))
    }
}
use crate::sources::SourceContext;
use crate::store::Store;

const MIN_RESTART: Duration = Duration::from_secs(1);
const MAX_RESTART: Duration = Duration::from_secs(60);

pub struct Runtime {
    config: Config,
    store: Store,
    sinks: SinkMap,
    sink_tasks: HashMap<String, JoinHandle<()>>,
    statuses: StatusMap,
    /// Each tenant's sinks, for events that arrive through the API.
    routes: Routes,
    usage: Arc<UsageMeter>,
    usage_flush: JoinHandle<()>,
    tenants: HashMap<String, TenantTask>,
}

struct TenantTask {
    config: TenantConfig,
    cancel: CancellationToken,
    joins: Vec<JoinHandle<()>>,
}

/// What a reload changed, for the log.
#[derive(Debug, Default)]
pub struct Changes {
    pub sinks_started: Vec<String>,
    pub sinks_stopped: Vec<String>,
    pub tenants_started: Vec<String>,
    pub tenants_stopped: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.sinks_started.is_empty() && self.sinks_stopped.is_empty() && self.tenants_started.is_empty() && self.tenants_stopped.is_empty()
    }
}

impl Runtime {
    pub async fn start(config: Config) -> anyhow::Result<Runtime> {
        let store = Store::open(&config.state_dir)?;
        tracing::info!(path = %store.path().display(), "store opened");
        let usage = UsageMeter::new();
        let usage_flush = {
            let (usage, store) = (usage.clone(), store.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tick.tick().await;
                    usage.flush(&store).await;
                }
            })
        };
        let mut runtime = Runtime {
            config: Config { sinks: Default::default(), tenants: Vec::new(), ..config.clone() },
            store,
            sinks: Arc::new(RwLock::new(HashMap::new())),
            sink_tasks: HashMap::new(),
            statuses: StatusMap::default(),
            routes: Routes::default(),
            usage,
            usage_flush,
            tenants: HashMap::new(),
        };
        runtime.apply(config).await?;
        Ok(runtime)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What the API needs of the running system; it follows reloads.
    pub fn view(&self) -> RuntimeView {
        RuntimeView {
            store: self.store.clone(),
            sinks: self.sinks.clone(),
            statuses: self.statuses.clone(),
            routes: self.routes.clone(),
            usage: self.usage.clone(),
        }
    }

    /// Moves the running system to `new`, touching only what differs. On error nothing changed.
    pub async fn apply(&mut self, new: Config) -> anyhow::Result<Changes> {
        anyhow::ensure!(
            new.state_dir == self.config.state_dir && new.store == self.config.store,
            "state_dir and store cannot change while running; restart sluice to move them"
        );
        // Build every new or changed sink first, so a sink that cannot be built leaves the old
        // config running untouched.
        let mut built = Vec::new();
        for (name, sink) in &new.sinks {
            if self.config.sinks.get(name) != Some(sink) {
                let instance = sink.settings.start(name, &self.store, &sink.policy).with_context(|| format!("sink `{name}`"))?;
                built.push((sink.clone(), instance));
            }
        }
        let mut changes = Changes::default();

        // Tenants that go away or change stop first, so nothing writes to a sink being replaced.
        let changed_sinks: HashSet<&str> = built.iter().map(|(s, _)| s.name.as_str()).collect();
        let new_tenants: HashMap<&str, &TenantConfig> = new.tenants.iter().map(|t| (t.name.as_str(), t)).collect();
        let stopping: Vec<String> = self
            .tenants
            .iter()
            .filter(|(name, t)| new_tenants.get(name.as_str()) != Some(&&t.config))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stopping {
            let task = self.tenants.remove(&name).expect("present");
            stop_tenant(task).await;
            changes.tenants_stopped.push(name);
        }

        // Sinks: retire removed and changed ones (their queued batches are written first), then
        // start the new ones.
        let retiring: Vec<String> = self
            .config
            .sinks
            .keys()
            .filter(|name| !new.sinks.contains_key(*name) || changed_sinks.contains(name.as_str()))
            .cloned()
            .collect();
        for name in retiring {
            self.sinks.write().expect("sink map poisoned").remove(&name);
            self.statuses.write().expect("status map poisoned").remove(&name);
            if let Some(join) = self.sink_tasks.remove(&name) {
                let _ = join.await;
            }
            changes.sinks_stopped.push(name);
        }
        for (sink, instance) in built {
            self.start_sink(&sink, instance).await;
            changes.sinks_started.push(sink.name.clone());
        }

        for tenant in &new.tenants {
            if !self.tenants.contains_key(&tenant.name) {
                self.start_tenant(tenant.clone());
                changes.tenants_started.push(tenant.name.clone());
            }
        }
        *self.routes.write().expect("routes poisoned") = new.tenants.iter().map(|t| (t.name.clone(), t.sinks.clone())).collect();
        self.config = new;
        Ok(changes)
    }

    async fn start_sink(&mut self, sink: &SinkConfig, instance: Box<dyn crate::sinks::Sink>) {
        let stored = self.store.sink_stats(&sink.name).await.unwrap_or_else(|e| {
            tracing::warn!(sink = %sink.name, error = %format!("{e:#}"), "cannot read sink statistics; starting from zero");
            None
        });
        let (pending, pending_bytes) = self.store.outbox_size(&sink.name).await.unwrap_or_else(|e| {
            tracing::error!(sink = %sink.name, error = %format!("{e:#}"), "cannot read the outbox size");
            (1, 0)
        });
        let status = SinkStatus::new(stored, pending, pending_bytes);
        self.statuses.write().expect("status map poisoned").insert(sink.name.clone(), status.clone());
        let (handle, join) = sink_worker::spawn(sink.name.clone(), instance, self.store.clone(), sink.policy.clone(), status);
        self.sinks.write().expect("sink map poisoned").insert(sink.name.clone(), handle);
        self.sink_tasks.insert(sink.name.clone(), join);
        tracing::info!(sink = %sink.name, "sink started");
    }

    fn start_tenant(&mut self, tenant: TenantConfig) {
        let cancel = CancellationToken::new();
        let emitter = Emitter::new(self.sinks.clone(), tenant.sinks.clone(), self.usage.clone());
        let mut joins = Vec::new();
        for source in &tenant.sources {
            let ctx = SourceContext {
                tenant: tenant.name.as_str().into(),
                source: source.name.as_str().into(),
                store: self.store.clone(),
                emitter: emitter.clone(),
                cancel: cancel.child_token(),
            };
            joins.push(tokio::spawn(supervise(source.settings.clone(), ctx)));
            tracing::info!(tenant = %tenant.name, source = %source.name, "source started");
        }
        self.tenants.insert(tenant.name.clone(), TenantTask { config: tenant, cancel, joins });
    }

    /// Stops intake, waits for in-flight batches to be acknowledged and positions saved, then
    /// lets the sinks finish their queues. Returns false if `deadline` passed first.
    pub async fn shutdown(mut self, deadline: Duration) -> bool {
        let started = tokio::time::Instant::now();
        let work = async {
            let tenants: Vec<TenantTask> = self.tenants.drain().map(|(_, t)| t).collect();
            futures::future::join_all(tenants.into_iter().map(stop_tenant)).await;
            tracing::info!(elapsed = ?started.elapsed(), "sources stopped, positions saved");
            self.sinks.write().expect("sink map poisoned").clear();
            futures::future::join_all(self.sink_tasks.drain().map(|(_, j)| j)).await;
            tracing::info!(elapsed = ?started.elapsed(), "sinks flushed");
            self.usage_flush.abort();
            self.usage.flush(&self.store).await;
        };
        tokio::time::timeout(deadline, work).await.is_ok()
    }
}

async fn stop_tenant(task: TenantTask) {
    task.cancel.cancel();
    for join in task.joins {
        let _ = join.await;
    }
    tracing::info!(tenant = %task.config.name, "tenant stopped");
}

/// Runs a source, restarting it with backoff when it fails, until it is cancelled.
async fn supervise(settings: std::sync::Arc<dyn crate::sources::SourceSettings>, ctx: SourceContext) {
    let mut delay = MIN_RESTART;
    loop {
        let result = settings.run(ctx.clone()).await;
        if ctx.cancel.is_cancelled() {
            return;
        }
        match result {
            Ok(()) => return,
            Err(e) => {
                metrics::counter!("sluice_source_errors_total", "tenant" => ctx.tenant.to_string(), "source" => ctx.source.to_string())
                    .increment(1);
                tracing::error!(tenant = %ctx.tenant, source = %ctx.source, error = %format!("{e:#}"), retry_in = ?delay, "source failed");
            }
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RESTART);
    }
}
