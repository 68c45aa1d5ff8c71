//! `sluice testserver`: an IDMEFv2 receiver that validates every message it gets.

use std::process::ExitCode;

use super::terminated;

pub async fn testserver(listen: std::net::SocketAddr) -> ExitCode {
    match crate::testserver::serve(listen, terminated()).await {
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
