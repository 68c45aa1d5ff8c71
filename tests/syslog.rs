//! Syslog against a real receiver: rsyslog, started here with its own config on loopback ports,
//! receives sluice's messages over UDP (CEF bodies), TCP with octet counting (LEEF bodies) and
//! TLS (JSON bodies). Every event must be in rsyslog's output, parsed by rsyslog as RFC 5424 with
//! sluice's structured data intact.
//!
//! Needs `rsyslogd` and its GnuTLS driver (`apt-get install rsyslog rsyslog-gnutls`). Without
//! them the test says so and passes, unless `SLUICE_REQUIRE_RSYSLOG=1` (as CI sets it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Sluice, count_lines, wait_until};

fn rsyslogd() -> Option<PathBuf> {
    let found = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"].iter().map(PathBuf::from).find(|p| p.exists());
    let gtls = Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists()
        || std::fs::read_dir("/usr/lib").ok().into_iter().flatten().flatten().any(|d| d.path().join("rsyslog/lmnsd_gtls.so").exists());
    match found {
        Some(p) if gtls => Some(p),
        _ if std::env::var_os("SLUICE_REQUIRE_RSYSLOG").is_some() => {
            panic!("rsyslogd with the gtls driver is required: apt-get install rsyslog rsyslog-gnutls")
        }
        _ => {
            eprintln!("SKIPPED: rsyslogd (with rsyslog-gnutls) is not installed");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Rsyslog(Child);

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1/localhost, as PEM files in `dir`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (ca_path, cert_path, key_path) = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca_path, cert_path, key_path)
}

/// One line of rsyslog's output: what rsyslog parsed out of the message.
struct Received {
    hostname: String,
    app_name: String,
    msgid: String,
    sd: BTreeMap<String, String>,
    msg: String,
}

/// Parses `[sluice@32473 k="v" …]` as rsyslog printed it (escapes kept as sent).
fn parse_sd(sd: &str) -> BTreeMap<String, String> {
    let inner = sd.strip_prefix("[sluice@32473 ").and_then(|s| s.strip_suffix(']')).unwrap_or_else(|| panic!("unexpected SD {sd:?}"));
    let mut out = BTreeMap::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("value closed") {
                (_, '\\') => value.push(chars.next().unwrap().1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        out.insert(name.trim().to_string(), value);
        rest = after[end + 1..].trim_start();
    }
    out
}

fn read_output(path: &Path) -> Vec<Received> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(5, " ||| ").collect();
            assert_eq!(f.len(), 5, "{l}");
            Received { hostname: f[0].into(), app_name: f[1].into(), msgid: f[2].into(), sd: parse_sd(f[3]), msg: f[4].into() }
        })
        .collect()
}

#[test]
fn rsyslog_receives_every_message_over_udp_tcp_and_tls() {
    let Some(rsyslogd) = rsyslogd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca, cert, key) = certificates(d);
    let (udp, tcp, tls) = (free_udp_port(), free_port(), free_port());
    let conf = d.join("rsyslog.conf");
    let out = |name: &str| d.join(format!("{name}.log"));
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{d}" maxMessageSize="64k"
       DefaultNetstreamDriverCAFile="{ca}" DefaultNetstreamDriverCertFile="{cert}" DefaultNetstreamDriverKeyFile="{key}")
module(load="imudp")
module(load="imtcp" maxSessions="100")
template(name="parsed" type="string" string="%hostname% ||| %app-name% ||| %msgid% ||| %structured-data% ||| %msg%\n")
ruleset(name="udp") {{ action(type="omfile" file="{udp_out}" template="parsed") }}
ruleset(name="tcp") {{ action(type="omfile" file="{tcp_out}" template="parsed") }}
ruleset(name="tls") {{ action(type="omfile" file="{tls_out}" template="parsed") }}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="udp" rcvbufSize="16m")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="tcp")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="tls" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
"#,
            d = d.display(),
            ca = ca.display(),
            cert = cert.display(),
            key = key.display(),
            udp_out = out("udp").display(),
            tcp_out = out("tcp").display(),
            tls_out = out("tls").display(),
        ),
    )
    .unwrap();
    let check = Command::new(&rsyslogd).args(["-N1", "-f"]).arg(&conf).output().unwrap();
    assert!(check.status.success(), "rsyslog refused its config: {}", String::from_utf8_lossy(&check.stderr));
    let _rsyslog = Rsyslog(
        Command::new(&rsyslogd)
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(d.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", tls)).is_ok(), || "rsyslog did not start".into());

    // Suricata alerts whose text has every character syslog, CEF and LEEF must escape.
    let eve = d.join("eve.json");
    let mut text = String::new();
    let total = 300;
    for i in 0..total {
        text.push_str(&format!(
            "{{\"timestamp\":\"2024-01-01T00:00:{:02}.000000+0000\",\"event_type\":\"alert\",\"src_ip\":\"10.0.0.{}\",\"src_port\":{},\"dest_ip\":\"10.0.1.1\",\"dest_port\":443,\"proto\":\"TCP\",\"alert\":{{\"signature_id\":{i},\"signature\":\"sig {i} | a=b \\\\ c ] \\\" \\n line2\\ttab\",\"category\":\"Misc activity\",\"severity\":{}}}}}\n",
            i % 60, i % 250, 1024 + i, 1 + i % 3
        ));
    }
    std::fs::write(&eve, &text).unwrap();
    let cfg = d.join("sluice.yml");
    std::fs::write(
        &cfg,
        format!(
            r#"state_dir: {d}/state
sinks:
  copy: {{type: file, path: "{d}/copy.jsonl", format: event}}
  udp: {{type: syslog, transport: udp, address: "127.0.0.1:{udp}", format: cef, hostname: sensor-1}}
  tcp: {{type: syslog, transport: tcp, framing: octet_counting, address: "127.0.0.1:{tcp}", format: leef, hostname: sensor-1}}
  tls: {{type: syslog, transport: tls, address: "127.0.0.1:{tls}", format: json, hostname: sensor-1, tls: {{ca_file: "{ca}", server_name: localhost}}}}
tenants:
  - name: acme
    sources:
      - {{name: eve, type: file, path: "{d}/eve.json", decoder: suricata}}
    sinks: [copy, udp, tcp, tls]
"#,
            d = d.display(),
            ca = ca.display()
        ),
    )
    .unwrap();
    let sluice = Sluice::start(&cfg, &d.join("sluice.log"));
    wait_until(
        Duration::from_secs(60),
        || ["tcp", "tls"].iter().all(|n| count_lines(&out(n)) >= total) && count_lines(&d.join("copy.jsonl")) >= total,
        || format!("tcp {} tls {} lines; sluice log:\n{}", count_lines(&out("tcp")), count_lines(&out("tls")), sluice.log_text()),
    );
    // UDP may lose datagrams in principle; on loopback with this volume it does not.
    wait_until(Duration::from_secs(20), || count_lines(&out("udp")) >= total, || format!("udp: {} lines", count_lines(&out("udp"))));
    assert_eq!(sluice.terminate(), 0);

    let ids: BTreeSet<String> = std::fs::read_to_string(d.join("copy.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), total);
    for (name, prefix) in [("udp", "CEF:0|suricata|Suricata|"), ("tcp", "LEEF:2.0|suricata|Suricata|"), ("tls", "{")] {
        let received = read_output(&out(name));
        assert_eq!(received.len(), total, "{name}: every message once");
        let got: BTreeSet<String> = received.iter().map(|r| r.sd["id"].clone()).collect();
        assert_eq!(got, ids, "{name}: the structured data names every event");
        for r in &received {
            assert_eq!((r.hostname.as_str(), r.app_name.as_str(), r.msgid.as_str()), ("sensor-1", "sluice", "alert"), "{name}");
            assert_eq!((r.sd["tenant"].as_str(), r.sd["source"].as_str(), r.sd["vendor"].as_str()), ("acme", "eve", "suricata"));
            assert!(r.msg.starts_with(prefix), "{name}: {}", r.msg);
            assert!(r.msg.contains("sig "), "{name}: {}", r.msg);
        }
        if name == "tls" {
            for r in &received {
                let doc: serde_json::Value = serde_json::from_str(&r.msg).unwrap_or_else(|e| panic!("{e}: {}", r.msg));
                assert!(doc["title"].as_str().unwrap().contains("| a=b \\ c ] \" \n line2\ttab"), "{doc}");
            }
        }
    }
}
