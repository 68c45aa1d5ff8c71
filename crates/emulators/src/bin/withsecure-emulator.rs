//! Serves a WithSecure Elements API emulator until killed, for benchmarks and manual runs:
//! N organizations `tenant{i}` (i from 0), each with client `client{i}` / secret `secret{i}` and
//! M events generated from an hour ago. Prints `listening on http://…` once it accepts requests.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sluice_emulators::cli::num;
use sluice_emulators::withsecure::{Emulator, Options};

const USAGE: &str = "usage: withsecure-emulator [--listen ADDR:PORT] [--tenants N] [--events M] \
[--per-timestamp K] [--token-ttl SECS] [--rate-limit PER_MINUTE]
  --listen         address to serve on (default 127.0.0.1:8443; port 0 picks one)
  --tenants        organizations tenant0..tenantN-1 with clients client{i}/secret{i} (default 3)
  --events         events generated per organization (default 1000)
  --per-timestamp  events sharing each persistenceTimestamp (default 3)
  --token-ttl      token lifetime in seconds (default 1799)
  --rate-limit     server-side requests per client per minute (default unlimited)";

struct Args {
    listen: SocketAddr,
    tenants: usize,
    events: usize,
    per_timestamp: usize,
    token_ttl: u64,
    rate_limit: Option<u32>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:8443".parse().expect("valid default"),
        tenants: 3,
        events: 1000,
        per_timestamp: 3,
        token_ttl: 1799,
        rate_limit: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = num(&flag, &value)?,
            "--tenants" => args.tenants = num(&flag, &value)?,
            "--events" => args.events = num(&flag, &value)?,
            "--per-timestamp" => args.per_timestamp = num(&flag, &value)?,
            "--token-ttl" => args.token_ttl = num(&flag, &value)?,
            "--rate-limit" => args.rate_limit = Some(num(&flag, &value)?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("withsecure-emulator: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = Options { token_ttl: Duration::from_secs(args.token_ttl), rate_limit_per_minute: args.rate_limit };
    let emulator = match Emulator::start(args.listen, options).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("withsecure-emulator: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    for i in 0..args.tenants {
        let org = format!("tenant{i}");
        emulator.add_organization(&org, &org, "company");
        emulator.add_client(&format!("client{i}"), &format!("secret{i}"), &org, &[]);
        emulator.generate(&org, args.events, start, args.per_timestamp);
    }
    println!("listening on {}", emulator.url());
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
