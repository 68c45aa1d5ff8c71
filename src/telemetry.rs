//! Logging and metrics set-up.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default on a terminal).
    Text,
    /// One JSON object per line, for machines.
    Json,
}

/// Level: `--log-level`, else `RUST_LOG`, else `debug` when `DEBUG=1`, else `info`.
pub fn init_logging(format: Option<LogFormat>, level: Option<&str>) {
    let debug_switch = std::env::var("DEBUG").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let filter = match level {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(if debug_switch { "debug" } else { "info" })),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format.unwrap_or(LogFormat::Text) {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
}

/// Serves Prometheus metrics on `listen` (`GET /metrics`).
pub fn init_metrics(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(listen)
        .install()
        .map_err(|e| anyhow::anyhow!("metrics listener on {listen}: {e}"))?;
    tracing::info!(%listen, "metrics listener bound");
    Ok(())
}
