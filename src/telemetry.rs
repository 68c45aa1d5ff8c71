//! Logging and metrics set-up.
//!
//! Logs go to journald when sluice runs under systemd (it sets `JOURNAL_STREAM` to our stderr),
//! with tenant, source and sink as journal fields; otherwise to stderr as text (or JSON with
//! `--log-format json`). `log.file` in the config adds a size-rotated file.

use std::path::PathBuf;
use std::sync::Mutex;

use clap::ValueEnum;
use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default on a terminal).
    Text,
    /// One JSON object per line, for machines.
    Json,
    /// The systemd journal (the default when started by systemd).
    Journald,
}

/// `log:` in the config: an extra log file, rotated by size.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFileConfig {
    pub file: PathBuf,
    /// Rotate when the file reaches this size: bytes, or `10MiB`, `1GiB` …
    #[serde(default = "default_max_size", deserialize_with = "size")]
    pub max_size: u64,
    /// Rotated files kept (`sluice.log.1` … `sluice.log.N`).
    #[serde(default = "default_max_files")]
    pub max_files: usize,
}

fn default_max_size() -> u64 {
    100 << 20
}
fn default_max_files() -> usize {
    5
}

pub(crate) fn size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bytes(b) => Ok(b),
        Raw::Text(t) => {
            parse_size(&t).ok_or_else(|| serde::de::Error::custom(format!("invalid size `{t}`; use bytes or e.g. 10MiB, 1GiB")))
        }
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(factor)
}

/// Under systemd, stderr is connected to the journal and `JOURNAL_STREAM` says so.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = stream.split_once(':') else { return false };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else { return false };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Level: `--log-level`, else `RUST_LOG`, else `debug` when `DEBUG=1`, else `info`.
pub fn init_logging(format: Option<LogFormat>, level: Option<&str>, file: Option<&LogFileConfig>) {
    let filter = || {
        let debug_switch = std::env::var("DEBUG").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        match level {
            Some(l) => EnvFilter::new(l),
            None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(if debug_switch { "debug" } else { "info" })),
        }
    };
    let format = format.unwrap_or(if stderr_is_journal() { LogFormat::Journald } else { LogFormat::Text });
    let main: Box<dyn Layer<_> + Send + Sync> = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).json().flatten_event(true).boxed(),
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(layer) => layer.with_syslog_identifier("sluice".into()).boxed(),
            Err(_) => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).boxed(),
        },
    };
    let file_layer = file.map(|f| {
        if let Some(dir) = f.file.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let rotate = file_rotate::FileRotate::new(
            &f.file,
            file_rotate::suffix::AppendCount::new(f.max_files),
            file_rotate::ContentLimit::BytesSurpassed(f.max_size as usize),
            file_rotate::compression::Compression::None,
            None,
        );
        tracing_subscriber::fmt::layer().with_writer(Mutex::new(rotate)).with_ansi(false).with_filter(filter())
    });
    tracing_subscriber::registry().with(main.with_filter(filter())).with(file_layer).init();
}

/// Records metrics in Prometheus form, for the API's `/metrics`, and also serves them on
/// `listen` (`GET /metrics`, no token) when that is given, with the API's protections against
/// hostile clients (see [`crate::api::server`]) and [`Limits::metrics`](crate::api::server::Limits::metrics).
pub fn init_metrics(listen: Option<std::net::SocketAddr>) -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let listener = match listen {
        Some(listen) => {
            let tcp = std::net::TcpListener::bind(listen)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(tokio::net::TcpListener::from_std)
                .map_err(|e| anyhow::anyhow!("metrics listener on {listen}: {e}"))?;
            Some((listen, tcp))
        }
        None => None,
    };
    metrics::set_global_recorder(recorder).map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
    // Drains histograms now and then, as the exporter's own listener did.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    if let Some((listen, tcp)) = listener {
        let router = metrics_router(handle.clone());
        tokio::spawn(crate::api::server::serve(
            tcp,
            "metrics",
            router,
            None,
            crate::api::server::Limits::metrics(),
            std::future::pending(),
        ));
        tracing::info!(%listen, "metrics listener bound");
    }
    Ok(handle)
}

/// `GET /health` answers `OK`; any other `GET` the metrics (as the exporter's listener did).
fn metrics_router(handle: metrics_exporter_prometheus::PrometheusHandle) -> axum::Router {
    use axum::http::{Method, StatusCode, header};
    use axum::response::IntoResponse;
    let render = move |method: Method| {
        let handle = handle.clone();
        async move {
            if method != Method::GET && method != Method::HEAD {
                return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
            }
            match tokio::task::spawn_blocking(move || handle.render()).await {
                Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
    };
    axum::Router::new().route("/health", axum::routing::get(|| async { "OK" })).fallback(render)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("5 parsecs"), None);
    }
}
