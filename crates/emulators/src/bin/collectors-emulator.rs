//! Serves the CrowdStrike, Tenable, Okta, Snyk and KnowBe4 emulators until killed, for manual
//! runs, each with N tenants `tenant{i}` (i from 0) holding a small generated data set. Prints
//! each emulator's URL and credentials once all of them accept requests.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use chrono::{TimeDelta, Utc};
use sluice_emulators::cli::{num, terminated};
use sluice_emulators::tenable::ExportKind;
use sluice_emulators::{crowdstrike, knowbe4, okta, snyk, tenable};

const USAGE: &str = "usage: collectors-emulator [--host ADDR] [--crowdstrike PORT] [--tenable PORT] [--okta PORT] \
[--snyk PORT] [--knowbe4 PORT] [--tenants N] [--records M]
  --host         address to serve on (default 127.0.0.1)
  --crowdstrike  port of the CrowdStrike Falcon emulator (default 0: any free port)
  --tenable      port of the Tenable Vulnerability Management emulator (default 0)
  --okta         port of the Okta emulator (default 0)
  --snyk         port of the Snyk emulator (default 0)
  --knowbe4      port of the KnowBe4 Reporting emulator (default 0)
  --tenants      tenants per emulator (default 2)
  --records      records of each kind per tenant: hosts, findings, users, issues… (default 1000)";

struct Args {
    host: IpAddr,
    ports: [u16; 5],
    tenants: usize,
    records: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { host: IpAddr::from([127, 0, 0, 1]), ports: [0; 5], tenants: 2, records: 1000 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => args.host = num(&flag, &value)?,
            "--crowdstrike" => args.ports[0] = num(&flag, &value)?,
            "--tenable" => args.ports[1] = num(&flag, &value)?,
            "--okta" => args.ports[2] = num(&flag, &value)?,
            "--snyk" => args.ports[3] = num(&flag, &value)?,
            "--knowbe4" => args.ports[4] = num(&flag, &value)?,
            "--tenants" => args.tenants = num(&flag, &value)?,
            "--records" => args.records = num(&flag, &value)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

async fn serve(args: &Args) -> std::io::Result<()> {
    let addr = |i: usize| SocketAddr::new(args.host, args.ports[i]);
    let n = args.records;

    let falcon = crowdstrike::Emulator::start(addr(0), crowdstrike::Options::default()).await?;
    let tio = tenable::Emulator::start(addr(1), tenable::Options::default()).await?;
    let okta = okta::Emulator::start(addr(2), okta::Options::default()).await?;
    let snyk = snyk::Emulator::start(addr(3), snyk::Options::default()).await?;
    let kb4 = knowbe4::Emulator::start(addr(4), knowbe4::Options::default()).await?;
    let since = Utc::now() - TimeDelta::hours(1);
    for t in 0..args.tenants {
        let cid = format!("{:032x}", t + 1);
        falcon.add_client(&format!("client{t}"), &format!("secret{t}"), &cid);
        falcon.set_hosts(&cid, n);
        falcon.set_vulnerabilities(&cid, n * 3);
        let alerts = (0..n.min(500)).map(|i| crowdstrike::sample_alert(&cid, i, since + TimeDelta::seconds(i as i64))).collect();
        falcon.add_alerts(&cid, alerts);

        let access = format!("access{t}");
        tio.add_keys(&access, &format!("secret{t}"));
        for kind in [ExportKind::Vulns, ExportKind::Assets, ExportKind::Compliance, ExportKind::WasVulns] {
            tio.set_count(&access, kind, n);
        }

        let token = format!("okta-token{t}");
        okta.add_token(&token);
        okta.set_users(&token, n, n / 20);
        okta.add_log_events(&token, (0..n).map(|i| okta::sample_log_event(i, since + TimeDelta::seconds(i as i64))).collect());

        let (token, org) = (format!("snyk-token{t}"), format!("00000000-0000-4000-8000-{:012x}", t + 1));
        snyk.add_org(&token, &org, &format!("Tenant {t}"));
        snyk.set_projects(&org, n / 10);
        snyk.set_issues(&org, n);
        snyk.set_members(&org, 20);

        let key = format!("kb4-key{t}");
        kb4.add_key(&key);
        kb4.set_enrollments(&key, n);
    }
    let last = args.tenants.saturating_sub(1);
    println!("crowdstrike {}  client{{0..{last}}} / secret{{i}}, CID {{i+1 as 32 hex digits}}", falcon.url());
    println!("tenable     {}  X-ApiKeys accessKey=access{{i}};secretKey=secret{{i}}", tio.url());
    println!("okta        {}  SSWS okta-token{{i}}", okta.url());
    println!("snyk        {}  token snyk-token{{i}}, org 00000000-0000-4000-8000-{{i+1 as 12 hex digits}}", snyk.url());
    println!("knowbe4     {}  Bearer kb4-key{{i}}", kb4.url());
    terminated().await;
    Ok(())
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
            eprintln!("collectors-emulator: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collectors-emulator: cannot listen: {e}");
            ExitCode::FAILURE
        }
    }
}
