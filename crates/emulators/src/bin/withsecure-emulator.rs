//! `withsecure-emulator --listen 127.0.0.1:8443 --tenants N --events M [--per-timestamp K] [--token-ttl SECS]`
//!
//! Serves a WithSecure Elements emulator with N organizations `tenant{i}` (client `client{i}`,
//! secret `secret{i}`), each holding M events from an hour ago, until killed.

use std::time::Duration;

use sluice_emulators::withsecure::{Emulator, Options};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("withsecure-emulator --listen ADDR --tenants N --events M [--per-timestamp K] [--token-ttl SECS]");
        return;
    }
    let listen = arg(&args, "--listen", "127.0.0.1:8443").parse().expect("--listen ADDR:PORT");
    let tenants: usize = arg(&args, "--tenants", "3").parse().expect("--tenants N");
    let events: usize = arg(&args, "--events", "1000").parse().expect("--events M");
    let per: usize = arg(&args, "--per-timestamp", "3").parse().expect("--per-timestamp K");
    let ttl: u64 = arg(&args, "--token-ttl", "1799").parse().expect("--token-ttl SECS");
    let emulator = Emulator::start(listen, Options { token_ttl: Duration::from_secs(ttl), ..Options::default() })
        .await
        .expect("bind");
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    for i in 0..tenants {
        let org = format!("tenant{i}");
        emulator.add_organization(&org, &org, "company");
        emulator.add_client(&format!("client{i}"), &format!("secret{i}"), &org, &[]);
        emulator.generate(&org, events, start, per);
    }
    println!("listening on {}", emulator.url());
    std::future::pending::<()>().await;
}
