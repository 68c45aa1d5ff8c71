//! `sluice collect`: runs every configured collector once and exits — the original data
//! collectors' `python wrapper.py`, for cron and containers.
//!
//! Configured by `-c sluice.yml`, or, without a config file, the way the original was: its
//! environment variables (and a `.env` file in the working directory): `TENANCY`, `STORE_FILE`,
//! `STORE_POSTGRES_*` and each collector's credentials (`FALCON_CLIENT_ID` …). A failing data set
//! or collector never stops the others; the exit code is 1 when any failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::EXIT_INVALID_CONFIG;
use super::sinks::Sinks;
use crate::config::{Config, TenantConfig};
use crate::notify::{self, Level};
use crate::pipeline::Emitter;
use crate::sinks::file::FileSinkConfig;
use crate::sinks::s3::S3Config;
use crate::sources::SourceContext;
use crate::sources::collectors::{self, COLLECTORS};
use crate::store::Store;
use crate::store::lock::StateLock;
use crate::usage::UsageMeter;

/// The original's defaults.
const DEFAULT_STORE_FILE: &str = "../data/source/%TAG/%TENANCY.json";
const DEFAULT_TENANCY: &str = "default";
const DEFAULT_S3_BACKUP: &str = "backup/%TAG/%TENANCY.json";
/// Where state lives without a config file.
const DEFAULT_STATE_DIR: &str = "./.sluice";

/// `--list`: every collector, its variables and whether it is configured.
pub fn list() -> ExitCode {
    load_dotenv();
    for spec in COLLECTORS {
        let configured = spec.params.iter().all(|p| p.default.is_some() || env(p.env).is_some());
        println!("{} ({}) — {}: {}", spec.name, spec.title, spec.link, if configured { "configured" } else { "not configured" });
        for p in spec.params {
            let state = match (env(p.env), p.default) {
                (Some(_), _) if p.secret => "set".to_string(),
                (Some(v), _) => format!("set: {v}"),
                (None, Some("")) => "optional".to_string(),
                (None, Some(d)) => format!("default {d}"),
                (None, None) => "required, not set".to_string(),
            };
            println!("  {:<20} {:<14} {state} — {}", p.env, p.name, p.help);
        }
    }
    ExitCode::SUCCESS
}

pub async fn collect(config_path: Option<PathBuf>, parallel: usize) -> ExitCode {
    load_dotenv();
    let config = match &config_path {
        Some(path) => Config::load(path).map_err(|e| e.to_string()),
        None if Path::new("sluice.yml").exists() => Config::load(Path::new("sluice.yml")).map_err(|e| e.to_string()),
        None => from_env(&env),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    if config_path.is_none() && !Path::new("sluice.yml").exists() {
        seed_from_backup(&config).await;
    }
    match run(config, parallel).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("collect: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Collects once with every collector source of `config`.
pub async fn run(config: Config, parallel: usize) -> anyhow::Result<ExitCode> {
    let _lock = StateLock::acquire(&config.state_dir).context("the state directory is in use (is the daemon running on it?)")?;
    let store = Store::open(&config.state_dir).context("cannot open the store")?;
    let cancel = CancellationToken::new();
    let signals = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            super::terminated().await;
            eprintln!("collect: interrupted; stopping");
            cancel.cancel();
        })
    };
    let slack = notify::slack();
    if let Some(slack) = slack {
        slack.post(Level::Info, "Starting the collection process").await;
    }
    let usage = UsageMeter::new();
    let mut failed = 0;
    let mut collectors = 0;
    // Every sink a tenant routes to, started once for all tenants.
    let mut routed: Vec<String> = config.tenants.iter().flat_map(|t| t.sinks.iter().cloned()).collect();
    routed.sort();
    routed.dedup();
    let all = TenantConfig { name: String::new(), sources: Vec::new(), sinks: routed };
    let sinks = Sinks::start(&config, &all, &store, None).await?;
    let runs = config.tenants.iter().flat_map(|tenant| {
        let emitter = Emitter::new(sinks.map.clone(), tenant.sinks.clone(), usage.clone());
        let (store, cancel) = (store.clone(), cancel.clone());
        tenant.sources.iter().filter_map(move |source| {
            let ctx = SourceContext {
                tenant: tenant.name.as_str().into(),
                source: source.name.as_str().into(),
                store: store.clone(),
                emitter: emitter.clone(),
                cancel: cancel.clone(),
            };
            let once = source.settings.collect_once(ctx)?;
            let label = format!("{}/{}", tenant.name, source.name);
            Some(async move { (label, once.await) })
        })
    });
    // Collectors run side by side, `parallel` at a time; each one's data sets in turn.
    let mut results = futures::stream::iter(runs).buffer_unordered(parallel.max(1));
    while let Some((label, reports)) = results.next().await {
        collectors += 1;
        for r in &reports {
            match &r.result {
                Ok(()) => println!("{label} {}: {} records in {:.1} s", r.tag, r.records, r.took.as_secs_f64()),
                Err(e) => {
                    failed += 1;
                    let text = format!("{label} {}: failed after {} records: {e:#}", r.tag, r.records);
                    println!("{}", slack.map_or_else(|| crate::settings::redact_urls(&text), |s| s.masked(&text)));
                    if let Some(slack) = slack {
                        slack.tell(&format!("{label} {}", r.tag), Level::Error, &format!("Collection failed: {text}")).await;
                    }
                }
            }
        }
    }
    drop(results);
    for (outbox, events) in sinks.finish(&store, &cancel).await? {
        eprintln!("collect: {events} events are still in the store for `{outbox}`; the next run delivers them first");
    }
    usage.flush(&store).await;
    signals.abort();
    if collectors == 0 {
        eprintln!("collect: no collector is configured (see `sluice collect --list`)");
        return Ok(ExitCode::FAILURE);
    }
    if let Some(slack) = slack {
        let (level, text) = match failed {
            0 => (Level::Success, "Completed with the collection process".to_string()),
            n => (Level::Warning, format!("Completed with the collection process; {n} data sets failed")),
        };
        slack.post(level, &text).await;
    }
    Ok(if failed == 0 && !cancel.is_cancelled() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The config the original data collectors' environment describes.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    let tenancy = env("TENANCY").unwrap_or_else(|| DEFAULT_TENANCY.into());
    let mut sinks = serde_json::Map::new();
    let store_file = env("STORE_FILE").unwrap_or_else(|| DEFAULT_STORE_FILE.into());
    sinks.insert("store_file".into(), json!({"type": "file", "path": store_file, "format": "raw"}));
    if let Some(host) = env("STORE_POSTGRES_HOST") {
        let enc = |s: String| percent_encoding::utf8_percent_encode(&s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let user = env("STORE_POSTGRES_USER").map(enc).unwrap_or_else(|| "postgres".into());
        let password = env("STORE_POSTGRES_PASSWORD").map(|p| format!(":{}", enc(p))).unwrap_or_default();
        let port = env("STORE_POSTGRES_PORT").unwrap_or_else(|| "5432".into());
        let db = env("STORE_POSTGRES_DBNAME").map(enc).unwrap_or_else(|| "postgres".into());
        let url = format!("postgres://{user}{password}@{host}:{port}/{db}");
        // Unset, the original created a schema literally named `None`.
        let schema = env("STORE_POSTGRES_SCHEMA").unwrap_or_else(|| "public".into());
        sinks.insert("store_postgres".into(), json!({"type": "postgres", "url": url, "schema": schema}));
    }
    if let Some(bucket) = env("STORE_AWS_S3_BUCKET") {
        // The original: an object per collection at STORE_AWS_S3_KEY, when set, and the last
        // complete one at STORE_AWS_S3_BACKUP (its default), from which a fresh deployment
        // seeds missing local files.
        let backup = env("STORE_AWS_S3_BACKUP").unwrap_or_else(|| DEFAULT_S3_BACKUP.into());
        let mut s3 = json!({"type": "s3", "bucket": bucket});
        match env("STORE_AWS_S3_KEY") {
            Some(key) => {
                s3["key"] = key.into();
                s3["backup_key"] = backup.into();
            }
            None => s3["key"] = backup.into(),
        }
        if let Some(endpoint) = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")) {
            s3["endpoint"] = endpoint.into();
            s3["path_style"] = true.into();
        }
        if let Some(region) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
            s3["region"] = region.into();
        }
        sinks.insert("store_s3".into(), s3);
    }
    if env("STORE_DUCKDB").is_some() {
        eprintln!(
            "collect: STORE_DUCKDB is set but this build has no DuckDB destination; ignored (DuckDB reads the JSON files with read_json)"
        );
    }
    let mut sources = Vec::new();
    for spec in COLLECTORS {
        match collectors::from_env(spec, env) {
            None => {}
            Some(Err(e)) => return Err(format!("{}: {e}", spec.name)),
            Some(Ok(_)) => {
                let mut source = serde_json::Map::new();
                source.insert("name".into(), spec.name.into());
                source.insert("type".into(), spec.name.into());
                for p in spec.params {
                    if let Some(v) = env(p.env) {
                        source.insert(p.name.into(), v.into());
                    }
                }
                if let Some(slack) = notify::slack() {
                    slack.hide(spec.params.iter().filter(|p| p.secret).filter_map(|p| env(p.env)));
                }
                sources.push(Value::Object(source));
            }
        }
    }
    let sink_names: Vec<&String> = sinks.keys().collect();
    let config = json!({
        "state_dir": env("SLUICE_STATE_DIR").unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
        "sinks": sinks,
        "tenants": [{"name": tenancy, "sources": sources, "sinks": sink_names}],
    });
    // JSON is YAML: the same loader checks it and names what is wrong.
    Config::parse(&config.to_string(), Path::new("."), Path::new("(environment)"))
        .map_err(|errors| errors.iter().map(|e| format!("environment: {e}")).collect::<Vec<_>>().join("\n"))
}

/// Local snapshot files that are missing are fetched from their S3 backup first, as the
/// original did when a container started without its data.
async fn seed_from_backup(config: &Config) {
    let (Some(files), Some(s3)) = (config.sinks.get("store_file"), config.sinks.get("store_s3")) else { return };
    let (Some(files), Some(s3)) = (files.settings.downcast_ref::<FileSinkConfig>(), s3.settings.downcast_ref::<S3Config>()) else {
        return;
    };
    let s3 = match &s3.backup_key {
        Some(_) => s3.clone(),
        None => S3Config { backup_key: Some(s3.key.clone()), ..s3.clone() },
    };
    if files.path.has_uuid() {
        return;
    }
    for tenant in &config.tenants {
        for spec in COLLECTORS.iter().filter(|spec| tenant.sources.iter().any(|s| s.name == spec.name)) {
            let Some(Ok(pull)) = collectors::from_env(spec, &env) else { continue };
            for ds in &pull.datasets {
                let mut local = String::new();
                files.path.render(&tenant.name, &ds.tag, chrono::Utc::now(), "", &mut local);
                if Path::new(&local).exists() {
                    continue;
                }
                match crate::sinks::s3::restore_backup(&s3, &tenant.name, &ds.tag, Path::new(&local)).await {
                    Ok(bytes) => eprintln!("collect: {local} restored from the S3 backup ({bytes} bytes)"),
                    Err(e) => tracing::debug!(file = %local, error = %format!("{e:#}"), "no S3 backup to restore"),
                }
            }
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `.env` in the working directory, as the original loaded it; the environment wins.
fn load_dotenv() {
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => eprintln!("collect: .env not read: {e}"),
    }
}
