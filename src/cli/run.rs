//! `sluice run`: loads the config, starts logging as it says, and runs the daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use super::EXIT_INVALID_CONFIG;
use crate::config::Config;
use crate::telemetry::{self, LogFormat};

pub fn run(path: PathBuf, log_format: Option<LogFormat>, log_level: Option<&str>) -> ExitCode {
    // The config names the log file, so it is read before logging starts.
    let config = Config::load(&path);
    let log_file = config.as_ref().ok().and_then(|c| c.log_file.as_ref());
    telemetry::init_logging(log_format, log_level, log_file);
    let config = match config {
        Ok(c) => c,
        Err(errors) => {
            tracing::error!("{errors}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(crate::daemon::run(path, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot run");
            ExitCode::FAILURE
        }
    }
}
