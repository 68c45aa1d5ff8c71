//! The `sluice` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sluice::config::Config;
use sluice::pipeline::runtime::Runtime;
use sluice::service;
use sluice::telemetry::{self, LogFormat};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(name = "sluice", about = "Collects security events per tenant and delivers them to SIEMs", version)]
struct Cli {
    /// Log format: `text` for people, `json` for machines.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    /// Log level or filter (`debug`, `sluice=trace,info`); overrides RUST_LOG and DEBUG=1.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline until SIGTERM or SIGINT. SIGHUP or a change of the file reloads it.
    Run {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
    },
    /// Validate a config file: prints every error with its path; exit 0 if valid, 2 if not.
    Check {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
    },
    /// Decode lines (a file, or stdin) and print them encoded: try a mapping without the daemon.
    Convert {
        /// json, withsecure, suricata, wazuh, clamav, modsecurity, kismet, prometheus, zabbix, zoneminder
        #[arg(long, default_value = "json")]
        decoder: String,
        /// raw, event (= json), ecs, idmefv2, idmefv2_v04, vendor_wrapped, cef, leef, text
        #[arg(long, default_value = "event")]
        format: String,
        /// Input file; stdin when absent.
        file: Option<PathBuf>,
    },
    /// Receive IDMEFv2 messages over HTTP, validate each against the schema, print a line per message.
    Testserver {
        #[arg(long, default_value = "127.0.0.1:8888")]
        listen: std::net::SocketAddr,
    },
    /// Run the WithSecure pipeline against a local emulator with three tenants, until Ctrl-C.
    Demo {
        /// Where the demo writes its config, state and output.
        #[arg(long, default_value = "./data/demo")]
        dir: PathBuf,
        /// Events per organization to start with.
        #[arg(long, default_value_t = 1000)]
        events: usize,
    },
    /// Show each sink's health and statistics, as the running daemon last saved them.
    Status {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
        /// One JSON object per sink instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Manage the REST API's bearer tokens (kept hashed in the store).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token and print it (the only time it is shown).
    Create {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
        /// admin (everything), reader (read-only) or ingest (send events only)
        #[arg(long)]
        role: String,
        /// Bind the token to one tenant: it then sees and writes only that tenant's data.
        #[arg(long)]
        tenant: Option<String>,
        /// What the token is for.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List tokens (never their secret).
    List {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
    },
    /// Revoke a token by its id; it stops working at once.
    Revoke {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
        id: String,
    },
}

/// Decoding and encoding allocate many small values; mimalloc halves what the system allocator
/// costs there (measured in bench/convert.py).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for an invalid config, as `sluice check` documents.
const EXIT_INVALID_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("sluice {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Check { config } => check(&config),
        Command::Status { config, json } => status(&config, json),
        Command::Token { action } => token(action),
        Command::Convert { decoder, format, file } => convert(&decoder, &format, file.as_deref()),
        Command::Testserver { listen } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            let stop = async {
                let mut term = signal(SignalKind::terminate()).expect("signal handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            };
            match runtime.block_on(sluice::testserver::serve(listen, stop)) {
                Ok(counts) => {
                    use std::sync::atomic::Ordering;
                    println!("{} valid, {} invalid", counts.valid.load(Ordering::Relaxed), counts.invalid.load(Ordering::Relaxed));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("testserver: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo { dir, events } => {
            telemetry::init_logging(cli.log_format, cli.log_level.as_deref().or(Some("warn")), None);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            match runtime.block_on(sluice::demo::run(&dir, events, stop)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config: path } => {
            // The config names the log file, so it is read before logging starts.
            let config = Config::load(&path);
            let log_file = config.as_ref().ok().and_then(|c| c.log_file.as_ref());
            telemetry::init_logging(cli.log_format, cli.log_level.as_deref(), log_file);
            let config = match config {
                Ok(c) => c,
                Err(errors) => {
                    tracing::error!("{errors}");
                    return ExitCode::from(EXIT_INVALID_CONFIG);
                }
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            runtime.block_on(run(path, config))
        }
    }
}

fn check(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            let sources: usize = config.tenants.iter().map(|t| t.sources.len()).sum();
            println!(
                "{}: valid ({} tenant(s), {} source(s), {} sink(s))",
                path.display(),
                config.tenants.len(),
                sources,
                config.sinks.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}

fn token(action: TokenAction) -> ExitCode {
    use sluice::api::auth::{self, Role};
    let path = match &action {
        TokenAction::Create { config, .. } | TokenAction::List { config } | TokenAction::Revoke { config, .. } => config.clone(),
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result: anyhow::Result<ExitCode> = runtime.block_on(async {
        let store = sluice::store::Store::open(&config.state_dir)?;
        match action {
            TokenAction::Create { role, tenant, name, .. } => {
                let Some(role) = Role::parse(&role) else {
                    eprintln!("role `{role}`: use admin, reader or ingest");
                    return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
                };
                if let Some(t) = &tenant {
                    if let Err(e) = sluice::names::validate(t) {
                        eprintln!("tenant: {e}");
                        return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
                    }
                    if !config.tenants.iter().any(|c| c.name == *t) {
                        eprintln!("note: tenant `{t}` is not in {} (yet)", path.display());
                    }
                }
                let (token, new) = auth::create(&store, role, tenant.as_deref(), &name).await?;
                eprintln!("token {} ({}, tenant {}): keep it now, it is not shown again", new.id, role.as_str(), tenant.as_deref().unwrap_or("*"));
                println!("{token}");
            }
            TokenAction::List { .. } => {
                println!("{:<10} {:<8} {:<20} {:<25} {:<25} NAME", "ID", "ROLE", "TENANT", "CREATED", "REVOKED");
                for t in store.tokens(None).await? {
                    println!(
                        "{:<10} {:<8} {:<20} {:<25} {:<25} {}",
                        t.id,
                        t.role,
                        t.tenant.as_deref().unwrap_or("*"),
                        t.created_at,
                        t.revoked_at.as_deref().unwrap_or("-"),
                        t.name
                    );
                }
            }
            TokenAction::Revoke { id, .. } => {
                if !store.revoke_token(&id, None).await? {
                    eprintln!("no live token with id `{id}`");
                    return Ok(ExitCode::FAILURE);
                }
                println!("revoked {id}");
            }
        }
        Ok(ExitCode::SUCCESS)
    });
    result.unwrap_or_else(|e| {
        eprintln!("{e:#}");
        ExitCode::FAILURE
    })
}

/// Reads the store (the daemon may be running: SQLite readers do not block it).
fn status(path: &Path, json: bool) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result: anyhow::Result<()> = runtime.block_on(async {
        let store = sluice::store::Store::open(&config.state_dir)?;
        if !json {
            println!(
                "{:<20} {:<9} {:>12} {:>10} {:>10} {:>10} {:>10} {:>8}  LAST ERROR",
                "SINK", "HEALTH", "SENT", "FAILED", "PENDING", "DEAD", "FILTERED", "SUCCESS"
            );
        }
        for name in config.sinks.keys() {
            let stats = store.sink_stats(name).await?.unwrap_or_default();
            let (pending, pending_bytes) = store.outbox_size(name).await?;
            let dead = store.dead_letter_count(name).await?;
            let attempts = stats.sent + stats.failed;
            let rate = (attempts > 0).then(|| stats.sent as f64 / attempts as f64);
            let health = if stats.health.is_empty() { "unknown" } else { stats.health.as_str() };
            if json {
                let row = serde_json::json!({
                    "sink": name, "health": health, "health_reason": stats.health_reason, "sent": stats.sent,
                    "failed": stats.failed, "pending": pending, "pending_bytes": pending_bytes, "dead_lettered": dead,
                    "filtered": stats.filtered, "truncated": stats.truncated, "success_rate": rate,
                    "last_error": stats.last_error, "last_error_at": stats.last_error_at,
                    "last_success_at": stats.last_success_at, "updated_at": stats.updated_at,
                });
                println!("{row}");
            } else {
                let rate = rate.map(|r| format!("{:.1}%", r * 100.0)).unwrap_or_else(|| "-".into());
                let error = stats.last_error.as_deref().unwrap_or("-").chars().take(80).collect::<String>();
                println!(
                    "{name:<20} {health:<9} {:>12} {:>10} {pending:>10} {dead:>10} {:>10} {rate:>8}  {error}",
                    stats.sent, stats.failed, stats.filtered
                );
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit 0 when every line converted, 1 when some could not (each reported on stderr).
fn convert(decoder: &str, format: &str, file: Option<&Path>) -> ExitCode {
    use std::io::{BufRead, Write};
    let Some(decoder) = sluice::decode::Decoder::parse(decoder) else {
        eprintln!("unknown decoder `{decoder}`; known: {}", sluice::normalize::VENDORS.join(", "));
        return ExitCode::from(EXIT_INVALID_CONFIG);
    };
    let Ok(format) = serde_json::from_value::<sluice::encode::Format>(serde_json::Value::String(format.to_string())) else {
        eprintln!("unknown format `{format}`; known: raw, event, ecs, idmefv2, idmefv2_v04, vendor_wrapped, cef, leef, text");
        return ExitCode::from(EXIT_INVALID_CONFIG);
    };
    let input: Box<dyn BufRead> = match file {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(std::io::stdin().lock()),
    };
    let origin = sluice::decode::Origin { tenant: "default".into(), source: "convert".into(), vendor: decoder.vendor().into() };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = 0;
    let mut buf = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("line {}: {e}", n + 1);
                failed += 1;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match decoder.decode_line(&line, &origin, chrono::Utc::now()) {
            Ok(events) => {
                for event in &events {
                    buf.clear();
                    // Raw formats do not run the vendor's decoder, so check it here; the others
                    // report its failure themselves.
                    let failure = if format.is_normalized() {
                        format.encode_line_reporting(event, &mut buf)
                    } else {
                        format.encode_line(event, &mut buf);
                        sluice::normalize::normalize(event).err()
                    };
                    if let Some(e) = failure {
                        eprintln!("line {}: {} decoder: {e} (written with the generic mapping)", n + 1, decoder.vendor());
                        failed += 1;
                    }
                    if out.write_all(&buf).is_err() {
                        return ExitCode::FAILURE;
                    }
                }
            }
            Err(e) => {
                eprintln!("line {}: {e}", n + 1);
                failed += 1;
            }
        }
    }
    let _ = out.flush();
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

async fn run(path: PathBuf, config: Config) -> ExitCode {
    let metrics = match telemetry::init_metrics(config.metrics_listen) {
        Ok(handle) => handle,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    let api_config = config.api.clone();
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            tracing::error!("cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    // SIEM connections created through the API run like sinks of the file.
    let config = match sluice::store::Store::open(&config.state_dir) {
        Ok(store) => match store.api_sinks().await {
            Ok(sinks) => sluice::api::siem::merge(config, &sinks),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot read the API's SIEM connections");
                return ExitCode::FAILURE;
            }
        },
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot open the store");
            return ExitCode::FAILURE;
        }
    };
    let mut runtime = match Runtime::start(config).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let api_stop = tokio_util::sync::CancellationToken::new();
    let (reconfigure_tx, mut reconfigure_rx) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<anyhow::Result<()>>>(8);
    let api = match api_config {
        Some(api_config) => {
            // A port that cannot be bound fails the start, like a bad config.
            let bound = match sluice::api::bind(&api_config, runtime.view(), Some(metrics), Some(reconfigure_tx)).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot start the API");
                    return ExitCode::FAILURE;
                }
            };
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
    ExitCode::SUCCESS
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
    let new = sluice::api::siem::merge(new, &sinks);
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

/// Detects a changed config file without relying on mtime resolution alone.
#[derive(PartialEq)]
struct FileStamp(Option<(std::time::SystemTime, u64, u64)>);

impl FileStamp {
    fn read(path: &Path) -> Self {
        FileStamp(std::fs::read(path).ok().and_then(|bytes| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len(), xxhash_rust::xxh3::xxh3_64(&bytes)))
        }))
    }
}
