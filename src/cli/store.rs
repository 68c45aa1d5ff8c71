//! `sluice store check|salvage`: the integrity of the embedded store, and the way back from a
//! damaged one.

use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_INVALID_CONFIG, StoreAction};
use crate::config::Config;
use crate::store::lock::StateLock;

pub fn store(action: StoreAction) -> ExitCode {
    let (StoreAction::Check { config } | StoreAction::Salvage { config }) = &action;
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let path = config.state_dir.join("sluice.db");
    match action {
        StoreAction::Check { .. } => check(&path),
        StoreAction::Salvage { .. } => salvage(&config.state_dir),
    }
}

/// Exit 0 when the store is intact, 1 when it is damaged (each problem printed).
fn check(path: &Path) -> ExitCode {
    if !path.exists() {
        println!("{}: no store yet", path.display());
        return ExitCode::SUCCESS;
    }
    match crate::store::check(path, true) {
        Ok(problems) if problems.is_empty() => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Ok(problems) => {
            for p in &problems {
                println!("{p}");
            }
            eprintln!(
                "{}: damaged ({} problem(s)); `sluice store salvage` copies what is readable into a new store",
                path.display(),
                problems.len()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{}: cannot be checked: {e:#}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn salvage(state_dir: &Path) -> ExitCode {
    // The daemon must not write while the store is replaced under it.
    let _lock = match StateLock::acquire(state_dir) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    match crate::store::salvage(state_dir) {
        Ok(report) => {
            let (mut copied, mut lost) = (0, 0);
            for (table, c, l) in &report.tables {
                println!("{table:<16} {c:>10} copied {l:>8} lost");
                copied += c;
                lost += l;
            }
            println!("{copied} row(s) copied, {lost} lost; the damaged store is kept as {}", report.damaged.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("salvage failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
