//! Serves a Wazuh server API v4 emulator until Ctrl-C (or SIGTERM), for benchmarks and manual
//! runs. Prints `listening on http://…` once it accepts requests, and the counts on exit.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sluice_emulators::cli::{num, rate, terminated};
use sluice_emulators::wazuh::{WazuhConfig, WazuhEmulator, WazuhFaults};

const USAGE: &str = "usage: wazuh-emulator [--listen ADDR:PORT] [--user USER] [--password PASSWORD] [--agents N] \
[--packages N] [--fim N] [--token-lifetime SECS] [--rate-limit N] [--seed N] [--error-rate P] [--reset-rate P] \
[--delay-ms MS]
  --listen          address to serve plain HTTP on (default 127.0.0.1:55000; port 0 picks one)
  --user            API user (default wazuh)
  --password        API password (default wazuh)
  --agents          agents 001..N to generate besides the manager (default 10)
  --packages        packages per generated agent (default 30)
  --fim             FIM entries per generated agent (default 20)
  --token-lifetime  JWT lifetime in seconds (default 900)
  --rate-limit      requests per minute of all clients together, 0 = unlimited (default 300)
  --seed            seed of the data generator and the fault RNG (default 1)
  --error-rate      probability of a 500 \"Wazuh Internal Error\"
  --reset-rate      probability of closing the connection without an answer
  --delay-ms        added to every response time";

struct Args {
    listen: SocketAddr,
    config: WazuhConfig,
    faults: WazuhFaults,
    agents: usize,
    packages: usize,
    fim: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:55000".parse().expect("valid default"),
        config: WazuhConfig::default(),
        faults: WazuhFaults::default(),
        agents: 10,
        packages: 30,
        fim: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = num(&flag, &value)?,
            "--user" => args.config.user = value,
            "--password" => args.config.password = value,
            "--agents" => args.agents = num(&flag, &value)?,
            "--packages" => args.packages = num(&flag, &value)?,
            "--fim" => args.fim = num(&flag, &value)?,
            "--token-lifetime" => args.config.token_lifetime = Duration::from_secs(num(&flag, &value)?),
            "--rate-limit" => args.config.max_requests_per_minute = num(&flag, &value)?,
            "--seed" => args.config.seed = num(&flag, &value)?,
            "--error-rate" => args.faults.error_rate = rate(&flag, &value)?,
            "--reset-rate" => args.faults.reset_rate = rate(&flag, &value)?,
            "--delay-ms" => args.faults.delay = Duration::from_millis(num(&flag, &value)?),
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
            eprintln!("wazuh-emulator: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let emulator = match WazuhEmulator::start_on(args.listen, args.config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("wazuh-emulator: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    emulator.generate(args.agents, args.packages, args.fim);
    emulator.set_faults(args.faults);
    println!("listening on {}", emulator.url());
    terminated().await;
    println!("requests {}, rate limited {}, tokens issued {}", emulator.requests(), emulator.rate_limited(), emulator.tokens_issued());
    emulator.stop().await;
    ExitCode::SUCCESS
}
