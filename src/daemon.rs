//! The daemon: starts the runtime and the API, then turns the main loop — signals, reloads of
//! the file and of the API's SIEM connections, the systemd watchdog — until it is told to stop,
//! and shuts down gracefully.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::pipeline::runtime::Runtime;
use crate::service;
use crate::store::Store;
use crate::store::lock::StateLock;
use crate::telemetry;

/// Runs the pipeline of `config` (read from `path`) until SIGTERM or SIGINT; SIGHUP, a change of
/// the file or of the API's SIEM connections reloads it. An error means it could not start.
pub async fn run(path: PathBuf, config: Config) -> anyhow::Result<()> {
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    // One daemon per state directory; taken first, so a second one touches nothing.
    let _lock = StateLock::acquire(&config.state_dir)?;
    let metrics = telemetry::init_metrics(config.metrics_listen)?;
    let api_config = config.api.clone();
    let signals = || -> std::io::Result<_> {
        Ok((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?, signal(SignalKind::hangup())?))
    };
    let (mut term, mut int, mut hup) = signals().context("installing signal handlers")?;
    // SIEM connections created through the API run like sinks of the file.
    let store = Store::open_checked(&config.state_dir, &path.display().to_string()).context("cannot open the store")?;
    let sinks = store.api_sinks().await.context("cannot read the API's SIEM connections")?;
    let config = crate::api::siem::merge(config, &sinks);
    let mut runtime = Runtime::start(config).await.context("cannot start")?;
    let api_stop = tokio_util::sync::CancellationToken::new();
    let (reconfigure_tx, mut reconfigure_rx) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<anyhow::Result<()>>>(8);
    let api = match api_config {
        Some(api_config) => {
            // A port that cannot be bound fails the start, like a bad config.
            let bound =
                crate::api::bind(&api_config, runtime.view(), Some(metrics), Some(reconfigure_tx)).await.context("cannot start the API")?;
            let stop = api_stop.clone();
            Some(tokio::spawn(async move {
                if let Err(e) = bound.serve(async move { stop.cancelled().await }).await {
                    tracing::error!(error = %format!("{e:#}"), "API stopped");
                }
            }))
        }
        None => None,
    };
    tracing::info!(config = %path.display(), tenants = runtime.config().tenants.len(), "sluice running");
    service::ready(&summary(&runtime));

    let mut watched = FileStamp::read(&path);
    let mut poll = tokio::time::interval(Duration::from_secs(2));
    // The main loop pings the watchdog itself: if it stops turning, systemd restarts sluice.
    let watchdog = service::watchdog_interval();
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    loop {
        let reason = tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = watchdog_tick.tick(), if watchdog.is_some() => {
                service::watchdog_ping();
                continue;
            }
            _ = hup.recv() => "SIGHUP",
            Some(reply) = reconfigure_rx.recv() => {
                service::reloading();
                let result = apply_file_and_api(&mut runtime, &path, "SIEM connections changed").await;
                service::ready(&summary(&runtime));
                let _ = reply.send(result);
                continue;
            }
            _ = poll.tick() => {
                let now = FileStamp::read(&path);
                if now == watched { continue }
                "config file changed"
            }
        };
        watched = FileStamp::read(&path);
        service::reloading();
        reload(&mut runtime, &path, reason).await;
        service::ready(&summary(&runtime));
    }

    service::stopping();
    // The API stops taking events first; requests in flight finish (graceful shutdown).
    api_stop.cancel();
    if let Some(api) = api {
        let _ = tokio::time::timeout(Duration::from_secs(10), api).await;
    }
    let deadline = runtime.config().shutdown_timeout;
    tracing::info!(?deadline, "shutting down: stopping intake and flushing");
    let started = std::time::Instant::now();
    if runtime.shutdown(deadline).await {
        tracing::info!(elapsed = ?started.elapsed(), "shutdown complete");
    } else {
        // Nothing unacknowledged was saved as delivered, so a restart repeats it: no loss.
        tracing::warn!(?deadline, "shutdown deadline passed; unfinished batches will be read again at the next start");
    }
    Ok(())
}

async fn reload(runtime: &mut Runtime, path: &Path, reason: &str) {
    if let Err(e) = apply_file_and_api(runtime, path, reason).await {
        tracing::error!("new configuration rejected, still running the previous one: {e:#}");
    }
}

/// Applies the config file plus the API's SIEM connections, as a difference to what runs.
async fn apply_file_and_api(runtime: &mut Runtime, path: &Path, reason: &str) -> anyhow::Result<()> {
    tracing::info!(reason, "reloading configuration");
    let new = Config::load(path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let sinks = runtime.store().api_sinks().await?;
    let new = crate::api::siem::merge(new, &sinks);
    let changes = runtime.apply(new).await?;
    if changes.is_empty() {
        tracing::info!("configuration reloaded: nothing changed");
    } else {
        tracing::info!(
            sinks_started = ?changes.sinks_started,
            sinks_stopped = ?changes.sinks_stopped,
            tenants_started = ?changes.tenants_started,
            tenants_stopped = ?changes.tenants_stopped,
            "configuration reloaded"
        );
    }
    Ok(())
}

/// One line for `systemctl status`.
fn summary(runtime: &Runtime) -> String {
    let config = runtime.config();
    let sources: usize = config.tenants.iter().map(|t| t.sources.len()).sum();
    format!("running: {} tenant(s), {sources} source(s), {} sink(s)", config.tenants.len(), config.sinks.len())
}

/// The config file's content: a reload happens when its bytes change, not when it or anything
/// beside it is touched.
#[derive(PartialEq)]
struct FileStamp(Option<(usize, u64)>);

impl FileStamp {
    fn read(path: &Path) -> Self {
        FileStamp(std::fs::read(path).ok().map(|bytes| (bytes.len(), xxhash_rust::xxh3::xxh3_64(&bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_with_the_same_bytes_is_no_change_and_other_bytes_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.yml");
        std::fs::write(&path, "tenants: []\n").unwrap();
        let before = FileStamp::read(&path);
        assert!(before == FileStamp::read(&path));
        std::fs::write(dir.path().join("other.yml"), "x").unwrap();
        std::fs::write(&path, "tenants: []\n").unwrap();
        assert!(before == FileStamp::read(&path), "rewritten with the same bytes, a file beside it: no change");
        std::fs::write(&path, "tenants: {}\n").unwrap();
        assert!(before != FileStamp::read(&path), "same length, other bytes: a change");
        std::fs::remove_file(&path).unwrap();
        assert!(FileStamp::read(&path) == FileStamp(None));
    }
}
