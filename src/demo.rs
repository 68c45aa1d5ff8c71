//! `sluice demo`: the whole WithSecure pipeline on one machine, without a WithSecure account.
//!
//! Starts the WithSecure Elements emulator with three tenants (one a partner account over two
//! organizations) and the Splunk HEC and Elasticsearch emulators, writes a config that collects
//! every tenant into JSONL files (for Wazuh), Splunk (with indexer acknowledgement) and
//! Elasticsearch, and runs it. New events keep arriving in the emulator while it runs.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use sluice_emulators::elasticsearch::{EsConfig, EsEmulator};
use sluice_emulators::splunk_hec::{HecConfig, HecEmulator};
use sluice_emulators::withsecure::{Emulator, Options};

use crate::config::Config;
use crate::pipeline::runtime::Runtime;

const TENANTS: &[(&str, &str)] = &[("alpha", "company"), ("bravo", "company"), ("charlie", "partner")];

/// Writes the demo config into `dir`, starts the emulator and the pipeline, and runs until
/// `stop` resolves.
pub async fn run(dir: &Path, events_per_org: usize, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let emulator = Emulator::start("127.0.0.1:0".parse().expect("valid address"), Options::default())
        .await
        .context("starting the WithSecure emulator")?;
    let start = Utc::now() - chrono::Duration::hours(1);
    let mut orgs = Vec::new();
    for (name, kind) in TENANTS {
        let org = format!("org-{name}");
        emulator.add_organization(&org, name, kind);
        let mut visible = vec![org.clone()];
        if *kind == "partner" {
            // A partner sees a customer organization besides its own.
            let customer = format!("org-{name}-customer");
            emulator.add_organization(&customer, &format!("{name} customer"), "company");
            emulator.generate(&customer, events_per_org, start, 3);
            orgs.push(customer.clone());
            visible.push(customer);
        }
        let visible: Vec<&str> = visible.iter().map(String::as_str).collect();
        emulator.add_client(&format!("{name}-client"), &format!("{name}-secret"), &org, &visible);
        emulator.generate(&org, events_per_org, start, 3);
        orgs.push(org);
    }

    let hec = HecEmulator::start(HecConfig { ack: true, ..HecConfig::default() }).await.context("starting the HEC emulator")?;
    let es = EsEmulator::start(EsConfig::default()).await.context("starting the Elasticsearch emulator")?;

    // Each demo starts from scratch: the emulator's events are new every time.
    for sub in ["out", "state"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config_path = dir.join("demo.yml");
    std::fs::write(&config_path, demo_config(dir, &emulator.url(), &hec.url(), &es.url(), start)).context("writing the demo config")?;
    let config = Config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = Runtime::start(config).await?;
    println!("WithSecure emulator:    {}", emulator.url());
    println!("Splunk HEC emulator:    {}", hec.url());
    println!("Elasticsearch emulator: {}", es.url());
    println!("config:  {}", config_path.display());
    println!("output:  {}", dir.join("out").display());
    println!(
        "Collecting {} events per organization from {} organizations; new ones arrive every 5 s. Ctrl-C stops.",
        events_per_org,
        orgs.len()
    );

    let feed = async {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tick.tick().await;
            for org in &orgs {
                emulator.generate(org, 10, Utc::now(), 2);
            }
        }
    };
    tokio::select! {
        _ = stop => {}
        _ = feed => {}
    }
    runtime.shutdown(Duration::from_secs(30)).await;
    for (name, _) in TENANTS {
        let out = dir.join("out").join(format!("{name}.jsonl"));
        let lines = std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0);
        println!("{name}: {lines} events in {}", out.display());
    }
    println!("Splunk HEC: {} events indexed and acknowledged", hec.event_count());
    println!("Elasticsearch: {} documents in {}", es.doc_count(), es.indices().join(", "));
    println!("`sluice status -c {}` shows each sink's health and statistics.", config_path.display());
    Ok(())
}

fn demo_config(dir: &Path, url: &str, hec: &str, es: &str, start: chrono::DateTime<Utc>) -> String {
    let dir = dir.display();
    let start = start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let token = HecConfig::default().token;
    let mut text = format!(
        "# Written by `sluice demo`.\nstate_dir: {dir}/state\nsinks:\n  wazuh:\n    type: file\n    path: \"{dir}/out/%TENANCY.jsonl\"\n    format: vendor_wrapped\n  splunk:\n    type: splunk_hec\n    url: {hec}\n    token: \"{token}\"\n    index: security\n    acknowledgements: {{enabled: true, poll_interval: 100ms}}\n    filter: {{min_severity: medium}}\n  elastic:\n    type: elasticsearch\n    url: {es}\n    index: \"sluice-%TENANCY-%YYYY.%MM.%DD\"\ntenants:\n"
    );
    for (name, kind) in TENANTS {
        let orgs = if *kind == "partner" { "\n        organizations: all" } else { "" };
        text.push_str(&format!(
            "  - name: {name}\n    sources:\n      - name: withsecure\n        type: withsecure\n        api_url: {url}\n        client_id: {name}-client\n        client_secret: {name}-secret\n        interval: 5s\n        rate_limit_per_minute: 600\n        start_mode: fixed\n        start_date: \"{start}\"{orgs}\n    sinks: [wazuh, splunk, elastic]\n"
        ));
    }
    text
}
