//! Serves a Splunk HTTP Event Collector emulator until Ctrl-C (or SIGTERM), for benchmarks and
//! manual runs. Prints `listening on http://…` once it accepts requests, and the counts on exit.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sluice_emulators::cli::{num, rate, terminated};
use sluice_emulators::splunk_hec::{HecConfig, HecEmulator, HecFaults};

const USAGE: &str = "usage: hec-emulator [--listen ADDR:PORT] [--token TOKEN] [--index NAME]... [--ack] \
[--ack-delay-ms MS] [--seed N] [--busy-rate P] [--error-rate P] [--reset-rate P] [--delay-ms MS] \
[--lose-acks-rate P] [--unhealthy]
  --listen          address to serve on (default 127.0.0.1:8088; port 0 picks one)
  --token           the HEC token expected in `Authorization: Splunk <token>`
                    (default 00000000-0000-0000-0000-000000000000)
  --index           an index the token may write to (repeatable; default any)
  --ack             enable indexer acknowledgement (requests then need a channel)
  --ack-delay-ms    time from indexing until an ackId turns true (default 50)
  --seed            seed of the fault RNG (default 1)
  --busy-rate       probability of 503 \"Server is busy\" (code 9)
  --error-rate      probability of 500 \"Internal server error\" (code 8)
  --reset-rate      probability of closing the connection without an answer
  --delay-ms        added to every response time
  --lose-acks-rate  probability that an ackId never turns true
  --unhealthy       health answers 503 code 18 and event requests 503 code 9";

fn parse_args() -> Result<(SocketAddr, HecConfig, HecFaults), String> {
    let mut listen: SocketAddr = "127.0.0.1:8088".parse().expect("valid default");
    let mut config = HecConfig::default();
    let mut faults = HecFaults::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--ack" => config.ack = true,
            "--unhealthy" => faults.unhealthy = true,
            _ => {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--listen" => listen = num(&flag, &value)?,
                    "--token" => config.token = value,
                    "--index" => config.allowed_indexes.push(value),
                    "--ack-delay-ms" => config.ack_delay = Duration::from_millis(num(&flag, &value)?),
                    "--seed" => config.seed = num(&flag, &value)?,
                    "--busy-rate" => faults.busy_rate = rate(&flag, &value)?,
                    "--error-rate" => faults.error_rate = rate(&flag, &value)?,
                    "--reset-rate" => faults.reset_rate = rate(&flag, &value)?,
                    "--delay-ms" => faults.delay = Duration::from_millis(num(&flag, &value)?),
                    "--lose-acks-rate" => faults.lose_acks_rate = rate(&flag, &value)?,
                    _ => return Err(format!("unknown argument {flag}")),
                }
            }
        }
    }
    Ok((listen, config, faults))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (listen, config, faults) = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hec-emulator: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let emulator = match HecEmulator::start_on(listen, config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("hec-emulator: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    emulator.set_faults(faults);
    println!("listening on {}", emulator.url());
    terminated().await;
    println!("requests {}, events indexed {}, acks pending {}", emulator.requests(), emulator.event_count(), emulator.pending_acks());
    emulator.stop().await;
    ExitCode::SUCCESS
}
