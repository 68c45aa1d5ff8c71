//! `sluice check`: validates a config file and prints every error with its YAML path.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_INVALID_CONFIG;
use crate::config::Config;

pub fn check(path: &Path) -> ExitCode {
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
            for warning in config.warnings() {
                eprintln!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}
