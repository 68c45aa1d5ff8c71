//! Serves the CrowdStrike, Tenable, KnowBe4 and Snyk emulators for `bench/collectors.sh` until
//! SIGTERM, sized by flags, and prints one `NAME URL` line each once all accept requests.
//!
//! - CrowdStrike: tenants `client{i}` / `secret{i}` (CID `i+1` as 32 hex digits), `--hosts` hosts
//!   each, nothing else.
//! - Tenable: key `access{i}` / `secret{i}` for each count of `--tenable-vulns A,B,…`: that many
//!   records in its vulnerabilities export (`set_vulnerabilities`; `VULNS_PER_ASSET` findings per
//!   asset, so a chunk of `num_assets` assets holds 4 × that many records).
//! - KnowBe4: key `kb4-key0` with `--knowbe4` enrollments.
//! - Snyk: token `snyk-token0`, org `00000000-0000-4000-8000-000000000001` with `--snyk-issues`
//!   issues, a tenth as many projects and 20 members.
//!
//! Records are rendered from their index when a page or chunk is asked for, so the emulator's
//! memory does not depend on these sizes.

use std::net::SocketAddr;

use sluice_emulators::cli::{num, terminated};
use sluice_emulators::{crowdstrike, knowbe4, snyk, tenable};

struct Args {
    crowdstrike_tenants: usize,
    hosts: u64,
    tenable_vulns: Vec<u64>,
    tenable_processing_polls: u32,
    knowbe4: u64,
    snyk_issues: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        crowdstrike_tenants: 0,
        hosts: 0,
        tenable_vulns: Vec::new(),
        tenable_processing_polls: tenable::Options::default().processing_polls,
        knowbe4: 0,
        snyk_issues: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--crowdstrike-tenants" => a.crowdstrike_tenants = num(&flag, &value)?,
            "--hosts" => a.hosts = num(&flag, &value)?,
            "--tenable-vulns" => {
                a.tenable_vulns = value.split(',').map(|v| num(&flag, v)).collect::<Result<_, _>>()?;
            }
            "--tenable-processing-polls" => a.tenable_processing_polls = num(&flag, &value)?,
            "--knowbe4" => a.knowbe4 = num(&flag, &value)?,
            "--snyk-issues" => a.snyk_issues = num(&flag, &value)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    let any: SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    let io = |e: std::io::Error| format!("cannot listen: {e}");

    let falcon = crowdstrike::Emulator::start(any, crowdstrike::Options::default()).await.map_err(io)?;
    for t in 0..args.crowdstrike_tenants {
        let cid = format!("{:032x}", t + 1);
        falcon.add_client(&format!("client{t}"), &format!("secret{t}"), &cid);
        falcon.set_hosts(&cid, args.hosts);
    }

    let options = tenable::Options { processing_polls: args.tenable_processing_polls, ..tenable::Options::default() };
    let tio = tenable::Emulator::start(any, options).await.map_err(io)?;
    for (i, &count) in args.tenable_vulns.iter().enumerate() {
        let access = format!("access{i}");
        tio.add_keys(&access, &format!("secret{i}"));
        tio.set_vulnerabilities(&access, count);
    }

    let kb4 = knowbe4::Emulator::start(any, knowbe4::Options::default()).await.map_err(io)?;
    kb4.add_key("kb4-key0");
    kb4.set_enrollments("kb4-key0", args.knowbe4);

    let snyk = snyk::Emulator::start(any, snyk::Options::default()).await.map_err(io)?;
    let org = "00000000-0000-4000-8000-000000000001";
    snyk.add_org("snyk-token0", org, "Tenant 0");
    snyk.set_issues(org, args.snyk_issues);
    snyk.set_projects(org, args.snyk_issues / 10);
    snyk.set_members(org, 20);

    println!("crowdstrike {}", falcon.url());
    println!("tenable {}", tio.url());
    println!("knowbe4 {}", kb4.url());
    println!("snyk {}", snyk.url());
    terminated().await;
    Ok(())
}
