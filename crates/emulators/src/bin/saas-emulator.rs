//! Serves the Microsoft 365 Management Activity, Microsoft Graph alerts_v2, AWS Security Hub,
//! Prometheus, Kismet and Zabbix emulators until killed, for manual runs, with generated data:
//! N tenants (Microsoft), N access keys (AWS), and one server each for the monitoring tools.
//! Prints each emulator's URL and credentials once all of them accept requests.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use sluice_emulators::cli::{num, terminated};
use sluice_emulators::{graph, kismet, m365, prometheus, securityhub, zabbix};

const USAGE: &str = "usage: saas-emulator [--host ADDR] [--m365 PORT] [--graph PORT] [--securityhub PORT] \
[--prometheus PORT] [--kismet PORT] [--zabbix PORT] [--tenants N] [--records M]
  --host         address to serve on (default 127.0.0.1)
  --m365         port of the Office 365 Management Activity emulator (default 0: any free port)
  --graph        port of the Microsoft Graph security alerts_v2 emulator (default 0)
  --securityhub  port of the AWS Security Hub emulator (default 0)
  --prometheus   port of the Prometheus alerts emulator (default 0)
  --kismet       port of the Kismet emulator (default 0)
  --zabbix       port of the Zabbix API emulator (default 0)
  --tenants      Microsoft tenants and AWS access keys (default 2)
  --records      audit records per content type, alerts, findings per tenant (default 500)";

struct Args {
    host: IpAddr,
    ports: [u16; 6],
    tenants: usize,
    records: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { host: IpAddr::from([127, 0, 0, 1]), ports: [0; 6], tenants: 2, records: 500 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => args.host = num(&flag, &value)?,
            "--m365" => args.ports[0] = num(&flag, &value)?,
            "--graph" => args.ports[1] = num(&flag, &value)?,
            "--securityhub" => args.ports[2] = num(&flag, &value)?,
            "--prometheus" => args.ports[3] = num(&flag, &value)?,
            "--kismet" => args.ports[4] = num(&flag, &value)?,
            "--zabbix" => args.ports[5] = num(&flag, &value)?,
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

    let o365 = m365::Emulator::start(addr(0), m365::Options::default()).await?;
    let graph = graph::Emulator::start(addr(1), graph::Options::default()).await?;
    let hub = securityhub::Emulator::start(addr(2), securityhub::Options::default()).await?;
    let prom = prometheus::Emulator::start(addr(3), prometheus::Options::default()).await?;
    let kismet =
        kismet::Emulator::start(addr(4), kismet::Options { api_tokens: vec!["kismet-token".into()], ..kismet::Options::default() }).await?;
    let zabbix = zabbix::Emulator::start(addr(5), zabbix::Options::default()).await?;

    let now = Utc::now();
    for t in 0..args.tenants {
        let tenant = format!("00000000-0000-4000-8000-{:012x}", t + 1);
        o365.add_app(&tenant, &format!("m365-app{t}"), &format!("secret{t}"));
        for content_type in m365::CONTENT_TYPES {
            o365.start_subscription(&tenant, content_type);
            o365.generate_records(&tenant, content_type, n, now - TimeDelta::hours(12), now);
        }
        graph.add_app(&tenant, &format!("graph-app{t}"), &format!("secret{t}"));
        graph.generate_alerts(&tenant, n, now - TimeDelta::hours(24), now);

        hub.add_key(&format!("AKIAEMULATOR{t:08}"));
        let account = format!("{:012}", 111_111_111_111 * (t as u64 % 9 + 1));
        hub.generate_findings("us-east-1", &account, n, now - TimeDelta::days(2), now);
        hub.generate_findings("eu-west-1", &account, n / 4, now - TimeDelta::days(2), now);
    }

    prom.fire(
        &[("alertname", "InstanceDown"), ("severity", "critical"), ("instance", "node-1:9100"), ("job", "node")],
        &[("summary", "node-1 is down")],
    );
    prom.fire(
        &[("alertname", "HighCpuLoad"), ("severity", "warning"), ("instance", "node-2:9100"), ("job", "node")],
        &[("summary", "CPU over 90%")],
    );
    prom.fire(&[("alertname", "DiskSpaceLow"), ("severity", "high"), ("instance", "[2001:db8::3]:9100"), ("job", "node")], &[]);
    prom.fire_at(
        &[("alertname", "SlowRequests"), ("severity", "info"), ("instance", "api:8080"), ("job", "api")],
        &[],
        "pending",
        now - TimeDelta::minutes(2),
    );

    kismet.generate_alerts(n.min(50), Duration::from_secs(3600));
    zabbix.add_api_token("zabbix-api-token");
    zabbix.generate_problems(n.min(200));

    let last = args.tenants.saturating_sub(1);
    let tenants = "tenant 00000000-0000-4000-8000-{i+1 as 12 hex digits}";
    println!("m365        {}  {tenants}, client m365-app{{0..{last}}} / secret{{i}} (token at /{{tenant}}/oauth2/v2.0/token)", o365.url());
    println!("graph       {}  {tenants}, client graph-app{{0..{last}}} / secret{{i}}", graph.url());
    println!("securityhub {}  access key AKIAEMULATOR{{i as 8 digits}} (any secret), regions us-east-1, eu-west-1", hub.url());
    println!("prometheus  {}  no auth", prom.url());
    println!("kismet      {}  Basic kismet / kismet, or KISMET=kismet-token", kismet.url());
    println!("zabbix      {}/api_jsonrpc.php  Admin / zabbix, or Bearer zabbix-api-token (version 7.2.0)", zabbix.url());
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
            eprintln!("saas-emulator: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("saas-emulator: cannot listen: {e}");
            ExitCode::FAILURE
        }
    }
}
