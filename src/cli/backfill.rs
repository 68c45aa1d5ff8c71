//! `sluice backfill`: collects a window of a tenant's WithSecure events again, on purpose, into
//! the tenant's sinks, without touching the live position: the running daemon is not disturbed
//! and its next cycle does not repeat the window. It may run while the daemon runs (the store is
//! SQLite in WAL mode).
//!
//! The events go through instances of the tenant's sinks of this process (a file sink appends to
//! the same files, with whole-line appends). Their outboxes, for events a destination could not
//! take yet, are kept apart from the daemon's, as `backfill:<sink>` in the store, so neither
//! process delivers the other's events; the command waits for them to be delivered before it
//! exits. One backfill runs at a time per store.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio_util::sync::CancellationToken;

use super::EXIT_INVALID_CONFIG;
use super::sinks::Sinks;
use crate::config::Config;
use crate::pipeline::Emitter;
use crate::sources::SourceContext;
use crate::sources::withsecure::WithSecureConfig;
use crate::sources::withsecure::backfill::{Progress, backfill as collect_window};
use crate::store::Store;
use crate::usage::UsageMeter;

/// Exit code when SIGINT or SIGTERM stopped the backfill.
const EXIT_INTERRUPTED: u8 = 130;
/// How often progress is reported on stderr.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What the command line asked for.
pub struct Request {
    pub config: PathBuf,
    pub tenant: String,
    pub source: Option<String>,
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
}

/// `--from` and `--to`: an RFC 3339 time, or a date (midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(day) => Ok(day.and_time(chrono::NaiveTime::MIN).and_utc()),
        Err(_) => Err(format!("`{text}` is neither an RFC 3339 time (2025-01-01T00:00:00Z) nor a date (2025-01-01, midnight UTC)")),
    }
}

pub async fn backfill(request: Request) -> ExitCode {
    let config = match Config::load(&request.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    // The API's timestamps are milliseconds; so is the default end.
    let to = request.to.unwrap_or_else(|| DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now is a valid time"));
    let sources = match plan(&config, &request, to) {
        Ok(sources) => sources,
        Err(reason) => {
            eprintln!("backfill: {reason}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    match run(config, &request.tenant, sources, request.from, to).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("backfill failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The sources to backfill, or why the request cannot be done.
fn plan(config: &Config, request: &Request, to: DateTime<Utc>) -> Result<Vec<(String, WithSecureConfig)>, String> {
    if request.from >= to {
        return Err(format!("the window is empty: --from {} is not before --to {}", stamp(request.from), stamp(to)));
    }
    let file = request.config.display();
    let Some(tenant) = config.tenants.iter().find(|t| t.name == request.tenant) else {
        let known: Vec<&str> = config.tenants.iter().map(|t| t.name.as_str()).collect();
        return Err(format!("there is no tenant `{}` in {file} (tenants: {})", request.tenant, known.join(", ")));
    };
    let mut sources = Vec::new();
    for source in &tenant.sources {
        if request.source.as_ref().is_some_and(|s| *s != source.name) {
            continue;
        }
        match source.settings.downcast_ref::<WithSecureConfig>() {
            Some(ws) => sources.push((source.name.clone(), ws.clone())),
            None if request.source.is_some() => {
                return Err(format!(
                    "source `{}` of tenant `{}` is not a `withsecure` source; only those can be backfilled",
                    source.name, tenant.name
                ));
            }
            None => {}
        }
    }
    match (&request.source, sources.is_empty()) {
        (Some(name), true) => Err(format!("tenant `{}` has no source `{name}` in {file}", tenant.name)),
        (None, true) => Err(format!("tenant `{}` has no `withsecure` source in {file}", tenant.name)),
        _ => Ok(sources),
    }
}

async fn run(
    config: Config,
    tenant: &str,
    sources: Vec<(String, WithSecureConfig)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.state_dir).context("cannot open the store")?;
    let Some(_lock) = lock(&config.state_dir)? else {
        eprintln!("backfill: another `sluice backfill` is running on the store in {}; wait for it to finish", config.state_dir.display());
        return Ok(ExitCode::FAILURE);
    };
    // The tenant's SIEM connections created through the API are its sinks too, as in the daemon.
    let config = crate::api::siem::merge(config, &store.api_sinks().await.context("cannot read the API's SIEM connections")?);
    let tenant = config.tenants.iter().find(|t| t.name == tenant).expect("planned");
    let sinks = Sinks::start(&config, tenant, &store, Some("backfill")).await?;
    let usage = UsageMeter::new();
    let emitter = Emitter::new(sinks.map.clone(), tenant.sinks.clone(), usage.clone());
    let cancel = CancellationToken::new();
    let signals = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            super::terminated().await;
            eprintln!("backfill: interrupted; stopping");
            cancel.cancel();
        })
    };
    eprintln!(
        "backfill {}: events persisted from {} to {} (excluded), into {}; the live position is not touched",
        tenant.name,
        stamp(from),
        stamp(to),
        tenant.sinks.join(", ")
    );

    let mut total = 0;
    let mut failure = None;
    for (name, settings) in &sources {
        let ctx = SourceContext {
            tenant: tenant.name.as_str().into(),
            source: name.as_str().into(),
            store: store.clone(),
            emitter: emitter.clone(),
            cancel: cancel.clone(),
        };
        let label = format!("{}/{name}", tenant.name);
        let progress = Arc::new(Progress::default());
        let reporter = tokio::spawn(report(label.clone(), progress.clone()));
        let result = collect_window(settings, &ctx, from, to, &progress).await;
        reporter.abort();
        eprintln!("backfill {label}: {} pages, {} events", progress.pages(), progress.events());
        total += progress.events();
        if cancel.is_cancelled() {
            if let Some((org, at)) = progress.at() {
                eprintln!("backfill {label}: organization {org} was stopped at {}", stamp(at));
            }
            break;
        }
        if let Err(e) = result {
            failure = Some(format!("{label}: {e:#}"));
            break;
        }
    }
    drop(emitter);
    let undelivered = sinks.finish(&store, &cancel).await?;
    usage.flush(&store).await;
    signals.abort();

    for (outbox, events) in &undelivered {
        eprintln!("backfill: {events} events are still in the store (outbox `{outbox}`); the next `sluice backfill` delivers them first");
    }
    if let Some(failure) = failure {
        eprintln!("backfill failed after {total} events: {failure}; the live position is unchanged");
        return Ok(ExitCode::FAILURE);
    }
    if cancel.is_cancelled() {
        eprintln!("backfill interrupted after {total} events; the live position is unchanged");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    eprintln!("backfill {}: done, {total} events delivered; the live position is unchanged", tenant.name);
    Ok(ExitCode::SUCCESS)
}

/// Reports progress on stderr while it changes.
async fn report(label: String, progress: Arc<Progress>) {
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.tick().await;
    let mut last = (0, 0);
    loop {
        tick.tick().await;
        let now = (progress.pages(), progress.events());
        if now == last {
            continue;
        }
        last = now;
        let at = progress.at().map(|(org, t)| format!(" (organization {org}, at {})", stamp(t))).unwrap_or_default();
        eprintln!("backfill {label}: {} pages, {} events so far{at}", now.0, now.1);
    }
}

/// Holds `state_dir/backfill.lock`, or None if another backfill holds it. Released on exit.
fn lock(state_dir: &Path) -> anyhow::Result<Option<File>> {
    let path = state_dir.join("backfill.lock");
    let file =
        OpenOptions::new().create(true).write(true).truncate(false).open(&path).with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_dates() {
        assert_eq!(parse_time("2025-01-02").unwrap().to_rfc3339(), "2025-01-02T00:00:00+00:00");
        assert_eq!(parse_time("2025-01-02T03:04:05+01:00").unwrap().to_rfc3339(), "2025-01-02T02:04:05+00:00");
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn one_backfill_at_a_time_per_store() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        assert!(held.is_some());
        assert!(lock(dir.path()).unwrap().is_none());
        drop(held);
        assert!(lock(dir.path()).unwrap().is_some());
    }
}
