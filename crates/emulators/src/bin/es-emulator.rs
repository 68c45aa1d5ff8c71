//! Serves an Elasticsearch/OpenSearch emulator until Ctrl-C (or SIGTERM), for benchmarks and
//! manual runs. Prints `listening on http://…` once it accepts requests, and the counts on exit.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sluice_emulators::cli::{num, rate, terminated};
use sluice_emulators::elasticsearch::{EsConfig, EsEmulator, EsFaults, Flavor};

const USAGE: &str = "usage: es-emulator [--listen ADDR:PORT] [--flavor elasticsearch|opensearch] [--user USER:PASSWORD] \
[--api-key KEY] [--max-content-length BYTES] [--data-stream GLOB]... [--seed N] [--request-429-rate P] \
[--request-503-rate P] [--item-429-rate P] [--item-500-rate P] [--reset-rate P] [--delay-ms MS] [--reject-field NAME] [--red]
  --listen              address to serve on (default 127.0.0.1:9200; port 0 picks one)
  --flavor              elasticsearch (8.15.0, default) or opensearch (2.17.0)
  --user                accepted Basic credentials
  --api-key             accepted `Authorization: ApiKey <KEY>` (no --user nor --api-key: no authentication)
  --max-content-length  larger request bodies get 413 (default 104857600)
  --data-stream         index names matching this glob are data streams (repeatable; default logs-*-* and metrics-*-*)
  --seed                seed of the fault and id RNG (default 1)
  --request-429-rate    probability that a bulk is rejected whole with 429
  --request-503-rate    probability that a bulk gets 503
  --item-429-rate       probability that an item is rejected with 429
  --item-500-rate       probability that an item fails with 500
  --reset-rate          probability of closing the connection without an answer (bulk applied half of the time)
  --delay-ms            added to every response time
  --reject-field        documents with this top-level field get a 400 mapping error
  --red                 cluster health red, GET / answers 503";

fn parse_args() -> Result<(SocketAddr, EsConfig, EsFaults), String> {
    let mut listen: SocketAddr = "127.0.0.1:9200".parse().expect("valid default");
    let mut config = EsConfig::default();
    let mut faults = EsFaults::default();
    let mut patterns: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--red" => faults.red = true,
            _ => {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--listen" => listen = num(&flag, &value)?,
                    "--flavor" => {
                        config.flavor = match value.as_str() {
                            "elasticsearch" => Flavor::Elasticsearch,
                            "opensearch" => Flavor::OpenSearch,
                            _ => return Err(format!("--flavor: {value:?} is neither elasticsearch nor opensearch")),
                        }
                    }
                    "--user" => {
                        let (user, password) = value.split_once(':').ok_or("--user: expected USER:PASSWORD")?;
                        config.basic = Some((user.to_string(), password.to_string()));
                    }
                    "--api-key" => config.api_key = Some(value),
                    "--max-content-length" => config.max_content_length = num(&flag, &value)?,
                    "--data-stream" => patterns.push(value),
                    "--seed" => config.seed = num(&flag, &value)?,
                    "--request-429-rate" => faults.request_429_rate = rate(&flag, &value)?,
                    "--request-503-rate" => faults.request_503_rate = rate(&flag, &value)?,
                    "--item-429-rate" => faults.item_429_rate = rate(&flag, &value)?,
                    "--item-500-rate" => faults.item_500_rate = rate(&flag, &value)?,
                    "--reset-rate" => faults.reset_rate = rate(&flag, &value)?,
                    "--delay-ms" => faults.delay = Duration::from_millis(num(&flag, &value)?),
                    "--reject-field" => faults.reject_field = Some(value),
                    _ => return Err(format!("unknown argument {flag}")),
                }
            }
        }
    }
    if !patterns.is_empty() {
        config.data_stream_patterns = patterns;
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
            eprintln!("es-emulator: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let emulator = match EsEmulator::start_on(listen, config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("es-emulator: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    emulator.set_faults(faults);
    println!("listening on {}", emulator.url());
    terminated().await;
    println!(
        "bulk requests {}, documents {}, conflicts {}, indices {}",
        emulator.bulk_requests(),
        emulator.doc_count(),
        emulator.conflicts(),
        emulator.indices().join(",")
    );
    emulator.stop().await;
    ExitCode::SUCCESS
}
