//! `sluice demo`: the WithSecure pipeline against local emulators, in builds with the `demo`
//! feature.

use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "demo")]
use super::terminated;

#[cfg(feature = "demo")]
pub async fn demo(dir: PathBuf, events: usize) -> ExitCode {
    match crate::demo::run(&dir, events, terminated()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "demo"))]
pub async fn demo(_dir: PathBuf, _events: usize) -> ExitCode {
    eprintln!("the demo is not in this build (it was built without the `demo` feature); build with `cargo build --features demo`");
    ExitCode::FAILURE
}
