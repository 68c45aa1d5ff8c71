//! The `sluice` command line: one module per command; this one parses the arguments and runs the
//! command on one tokio runtime.

mod backfill;
mod check;
mod collect;
mod convert;
mod demo;
mod pull;
mod run;
mod sinks;
mod status;
mod store;
mod testserver;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};

use crate::telemetry::{self, LogFormat};

/// Exit code for an invalid config, as `sluice check` documents.
const EXIT_INVALID_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(name = "sluice", about = "Collects security events per tenant and delivers them to SIEMs", version)]
pub struct Cli {
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
pub enum Command {
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
        /// The vendor whose lines these are (the `decoder:` of a source).
        #[arg(long, default_value = "json", value_parser = decoder_names())]
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
    /// Collect a window of a tenant's WithSecure events again, into its sinks, without moving the
    /// live position (the daemon may keep running). Progress on stderr; exit 0 when done.
    Backfill {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
        /// One source of the tenant; by default every `withsecure` source it has.
        #[arg(long)]
        source: Option<String>,
        /// Events persisted at or after this time: RFC 3339, or a date (midnight UTC).
        #[arg(long, value_parser = backfill::parse_time)]
        from: chrono::DateTime<chrono::Utc>,
        /// Events persisted before this time; default: now.
        #[arg(long, value_parser = backfill::parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Run every configured collector once and exit (for cron and containers). Without a config
    /// file, configured by the original data collectors' environment variables and `.env`.
    Collect {
        /// A config file; default `sluice.yml` when it exists, else the environment.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// List the collectors, their environment variables and whether each is configured.
        #[arg(long)]
        list: bool,
        /// Collectors (tenant × source) running at once.
        #[arg(long, default_value_t = 8)]
        parallel: usize,
    },
    /// Pull one source of one tenant once. With `--dry-run`, print the requests and the first
    /// records of each data set instead, delivering and saving nothing: try a definition first.
    Pull {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        source: String,
        /// One data set (its tag) instead of all.
        #[arg(long)]
        dataset: Option<String>,
        #[arg(long)]
        dry_run: bool,
        /// Records to print per data set with `--dry-run`.
        #[arg(long, default_value_t = 3)]
        records: usize,
    },
    /// Show each sink's health and statistics, as the running daemon last saved them.
    Status {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
        /// One JSON object per sink instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check the embedded store's integrity, or salvage a damaged one into a new store.
    Store {
        #[command(subcommand)]
        action: StoreAction,
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
pub enum StoreAction {
    /// Run SQLite's full integrity check on the store: exit 0 intact, 1 damaged.
    Check {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
    },
    /// Copy every readable row into a new store that takes the damaged one's place (kept as
    /// `sluice.db.damaged-<time>`). sluice must be stopped.
    Salvage {
        #[arg(short, long, default_value = "sluice.yml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum TokenAction {
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

/// The `--decoder` values: every registered vendor.
fn decoder_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::vendors::VENDORS.iter().map(|v| v.name))
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match cli.command {
        Command::Version => {
            println!("sluice {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Check { config } => check::check(&config),
        Command::Convert { decoder, format, file } => convert::convert(&decoder, &format, file.as_deref()),
        Command::Status { config, json } => runtime().block_on(status::status(&config, json)),
        Command::Token { action } => runtime().block_on(token::token(action)),
        Command::Store { action } => store::store(action),
        Command::Backfill { config, tenant, source, from, to } => {
            telemetry::init_logging(cli.log_format, cli.log_level.as_deref().or(Some("warn")), None);
            runtime().block_on(backfill::backfill(backfill::Request { config, tenant, source, from, to }))
        }
        Command::Collect { list: true, .. } => collect::list(),
        Command::Collect { config, list: false, parallel } => {
            // Progress of long exports on a terminal; problems only otherwise.
            let level = if std::io::IsTerminal::is_terminal(&std::io::stderr()) { "info" } else { "warn" };
            telemetry::init_logging(cli.log_format, cli.log_level.as_deref().or(Some(level)), None);
            runtime().block_on(collect::collect(config, parallel))
        }
        Command::Pull { config, tenant, source, dataset, dry_run, records } => {
            telemetry::init_logging(cli.log_format, cli.log_level.as_deref().or(Some("info")), None);
            runtime().block_on(pull::pull(pull::Request { config, tenant, source, dataset, dry_run, records }))
        }
        Command::Testserver { listen } => runtime().block_on(testserver::testserver(listen)),
        Command::Demo { dir, events } => {
            telemetry::init_logging(cli.log_format, cli.log_level.as_deref().or(Some("warn")), None);
            runtime().block_on(demo::demo(dir, events))
        }
        Command::Run { config: path } => run::run(path, cli.log_format, cli.log_level.as_deref()),
    }
}

/// Resolves at SIGTERM or Ctrl-C.
pub(super) async fn terminated() {
    let mut term = signal(SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
