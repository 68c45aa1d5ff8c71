//! `sluice status`: each sink's health and statistics, as the running daemon last saved them.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_INVALID_CONFIG;
use crate::config::Config;

/// Reads the store (the daemon may be running: SQLite readers do not block it).
pub async fn status(path: &Path, json: bool) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let result: anyhow::Result<()> = async {
        let store = crate::store::Store::open(&config.state_dir)?;
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
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
