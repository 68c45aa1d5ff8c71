//! Export records rendered on demand from (API key, record index), straight to JSON text, so a
//! chunk of a multi-million-record export is built only when downloaded. Vulnerability `i` is on
//! asset `i / VULNS_PER_ASSET`, whose uuid is the one the assets export gives asset number
//! `i / VULNS_PER_ASSET`.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat};

use crate::vendor::{mix, uuid_of};

/// Findings per asset in the vulnerabilities export: a chunk of `num_assets` assets holds
/// `num_assets * VULNS_PER_ASSET` findings.
pub const VULNS_PER_ASSET: u64 = 4;
/// Compliance findings per asset.
const CHECKS_PER_ASSET: u64 = 10;
/// Generated timestamps count from here (2025-01-01T00:00:00Z).
const BASE: i64 = 1_735_689_600;

fn ts(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

const PLUGINS: &[(u32, &str, &str, &str)] = &[
    (9062, "Chrome < 48.0.2564.82 Multiple Vulnerabilities", "Web Clients", "CVE-2016-1612"),
    (156_032, "Apache Log4j < 2.15.0 Remote Code Execution", "Misc.", "CVE-2021-44228"),
    (187_315, "OpenSSH < 9.6 Multiple Vulnerabilities", "Misc.", "CVE-2023-48795"),
    (166_555, "OpenSSL 3.0.0 < 3.0.7 Multiple Vulnerabilities", "Web Servers", "CVE-2022-3602"),
    (51_192, "SSL Certificate Cannot Be Trusted", "General", ""),
];
const SEVERITIES: &[(&str, u8, &str, f64)] = &[
    ("info", 0, "None", 0.0),
    ("low", 1, "Low", 3.1),
    ("medium", 2, "Medium", 5.3),
    ("high", 3, "High", 7.5),
    ("critical", 4, "Critical", 9.8),
];

fn asset_fields(out: &mut String, tag: u64, asset: u64) {
    let r = mix(tag ^ asset);
    let (a, b, c) = ((r >> 8) as u8, (r >> 16) as u8, (r >> 24) as u8);
    let _ = write!(
        out,
        r#""asset":{{"uuid":"{uuid}","hostname":"host-{asset:07}","fqdn":"host-{asset:07}.example.com","ipv4":"10.{a}.{b}.{c}","operating_system":["{os}"],"network_id":"00000000-0000-0000-0000-000000000000","tracked":true}}"#,
        uuid = uuid_of(tag, asset),
        os = if r.is_multiple_of(3) { "Linux Kernel 5.15 on Ubuntu 22.04" } else { "Microsoft Windows 11 Enterprise" },
    );
}

/// Finding `i` of the vulnerabilities export.
pub fn vulnerability(out: &mut String, tag: u64, i: u64) {
    let r = mix(tag ^ i ^ 0x7e4a);
    let (plugin, name, family, cve) = PLUGINS[(r % PLUGINS.len() as u64) as usize];
    let (severity, severity_id, risk, score) = SEVERITIES[(r >> 8) as usize % SEVERITIES.len()];
    let found = BASE + (r >> 16 & 0xff_ffff) as i64;
    let _ = write!(out, r#"{{"finding_id":"{}","#, uuid_of(tag ^ 0x7e4a, i));
    asset_fields(out, tag, i / VULNS_PER_ASSET);
    let cves = if cve.is_empty() { String::new() } else { format!(r#""{cve}""#) };
    let _ = write!(
        out,
        r#","plugin":{{"id":{plugin},"name":"{name}","family":"{family}","cve":[{cves}],"cvss_base_score":{score},"cvss3_base_score":{score},"risk_factor":"{risk}","vpr":{{"score":{vpr}}}}},"port":{{"port":{port},"protocol":"TCP"}},"scan":{{"uuid":"{scan}","started_at":"{found}","completed_at":"{found}"}},"severity":"{severity}","severity_id":{severity_id},"severity_default_id":{severity_id},"severity_modification_type":"NONE","first_found":"{found}","last_found":"{last}","indexed":"{last}","state":"{state}","output":"Finding {i}"}}"#,
        vpr = (r >> 40) % 100 / 10,
        port = [0, 22, 443, 3389][(r >> 48) as usize % 4],
        scan = uuid_of(tag, u64::MAX - (r >> 56)),
        found = ts(found),
        last = ts(found + 86_400 * 7),
        state = ["OPEN", "OPEN", "REOPENED", "FIXED"][(r >> 52) as usize % 4],
    );
}

/// Asset `i` of the assets export.
pub fn asset(out: &mut String, tag: u64, i: u64) {
    let r = mix(tag ^ i);
    let (a, b, c) = ((r >> 8) as u8, (r >> 16) as u8, (r >> 24) as u8);
    let created = BASE + (r >> 32 & 0xff_ffff) as i64;
    let _ = write!(
        out,
        r#"{{"id":"{id}","has_agent":{agent},"has_plugin_results":true,"created_at":"{created}","updated_at":"{updated}","first_seen":"{created}","last_seen":"{updated}","agent_uuid":"{agent_uuid:032x}","ipv4s":["10.{a}.{b}.{c}"],"ipv6s":[],"fqdns":["host-{i:07}.example.com"],"hostnames":["host-{i:07}"],"netbios_names":[],"mac_addresses":["00:50:56:{a:02x}:{b:02x}:{c:02x}"],"operating_systems":["{os}"],"system_types":["general-purpose"],"installed_software":["cpe:/a:openbsd:openssh:9.6"],"sources":[{{"name":"NESSUS_SCAN","first_seen":"{created}","last_seen":"{updated}"}}],"tags":[{{"uuid":"{tag_uuid}","key":"Environment","value":"{env}","added_by":"{tag_uuid}","added_at":"{created}"}}],"network_interfaces":[{{"name":"eth0","mac_address":["00:50:56:{a:02x}:{b:02x}:{c:02x}"],"ipv4":["10.{a}.{b}.{c}"],"ipv6":[],"fqdn":["host-{i:07}.example.com"]}}],"network_id":"00000000-0000-0000-0000-000000000000","acr_score":{acr},"exposure_score":{aes}}}"#,
        id = uuid_of(tag, i),
        agent = r.is_multiple_of(2),
        created = ts(created),
        updated = ts(created + 86_400 * 30),
        agent_uuid = mix(r),
        os = if r.is_multiple_of(3) { "Linux Kernel 5.15 on Ubuntu 22.04" } else { "Microsoft Windows 11 Enterprise" },
        tag_uuid = uuid_of(tag, u64::MAX),
        env = if r.is_multiple_of(5) { "Production" } else { "Staging" },
        acr = 1 + r % 10,
        aes = r % 1000,
    );
}

/// Finding `i` of the compliance export.
pub fn compliance(out: &mut String, tag: u64, i: u64) {
    let r = mix(tag ^ i ^ 0xc0);
    let status = ["PASSED", "FAILED", "WARNING", "SKIPPED", "ERROR", "UNKNOWN"][(r % 6) as usize];
    let seen = BASE + (r >> 16 & 0xff_ffff) as i64;
    let check = i % CHECKS_PER_ASSET;
    let _ = write!(
        out,
        r#"{{"asset_uuid":"{asset}","first_seen":"{first}","last_seen":"{last}","audit_file":"CIS_Microsoft_Windows_11_Enterprise_v3.0.0_L1.audit","check_id":"{check_id:064x}","check_name":"1.1.{n} Ensure 'Password policy {n}' is set","check_info":"Policy check {n}.","expected_value":"24 or more password(s)","actual_value":"{actual}","status":"{status}","reference":[{{"framework":"800-53","control":"IA-5(1)"}},{{"framework":"CSCv8","control":"5.2"}}],"see_also":"https://workbench.cisecurity.org/","solution":"Set the policy value.","plugin_id":21157,"state":"{state}","description":"Check {n}","compliance_benchmark_name":"CIS Microsoft Windows 11 Enterprise","compliance_benchmark_version":"3.0.0","compliance_control_id":"{check_id:016x}","compliance_full_id":"{check_id:032x}","compliance_functional_id":"{check_id:024x}","compliance_informational_id":"{check_id:020x}","synopsis":"Compliance check","last_observed":"{last}","indexed_at":"{last}"}}"#,
        asset = uuid_of(tag, i / CHECKS_PER_ASSET),
        first = ts(seen),
        last = ts(seen + 86_400),
        check_id = u128::from(mix(check ^ 0xc4ec)),
        n = check + 1,
        actual = r % 30,
        state = if status == "PASSED" { "FIXED" } else { "ACTIVE" },
    );
}

/// Finding `i` of the web-application vulnerabilities export.
pub fn was_vulnerability(out: &mut String, tag: u64, i: u64) {
    let r = mix(tag ^ i ^ 0x3a5);
    let (severity, severity_id, risk, score) = SEVERITIES[(r >> 8) as usize % SEVERITIES.len()];
    let found = BASE + (r >> 16 & 0xff_ffff) as i64;
    let app = i / VULNS_PER_ASSET;
    let (plugin, name, family, cwe) = [
        (98_104, "Cross-Site Scripting (XSS)", "Cross Site Scripting", 79),
        (98_115, "SQL Injection", "SQL Injection", 89),
        (112_529, "Missing Content Security Policy", "HTTP Security Header", 693),
        (98_527, "Cookie Without Secure Flag Detected", "Web Applications", 614),
    ][(r % 4) as usize];
    let _ = write!(
        out,
        r#"{{"finding_id":"{finding}","asset":{{"uuid":"{asset}","name":"https://app{app}.example.com","fqdn":"app{app}.example.com","ipv4":"10.0.{a}.{b}","tracked":true}},"plugin":{{"id":{plugin},"name":"{name}","family":"{family}","cwe":[{cwe}],"cvss3_base_score":{score},"risk_factor":"{risk}"}},"url":"https://app{app}.example.com/page/{page}","input_name":"q","input_type":"parameter","scan":{{"uuid":"{scan}","started_at":"{found}","completed_at":"{found}"}},"severity":"{severity}","severity_id":{severity_id},"first_found":"{found}","last_found":"{last}","indexed":"{last}","state":"{state}","output":"Finding {i}"}}"#,
        finding = uuid_of(tag ^ 0x3a5, i),
        asset = uuid_of(tag ^ 0x3a5, u64::MAX - app),
        a = (r >> 24) as u8,
        b = (r >> 32) as u8,
        page = r % 50,
        scan = uuid_of(tag, u64::MAX - (r >> 56)),
        found = ts(found),
        last = ts(found + 86_400 * 7),
        state = ["OPEN", "REOPENED", "FIXED"][(r >> 52) as usize % 3],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_json_and_vulnerabilities_point_at_assets() {
        let mut out = String::new();
        vulnerability(&mut out, 7, 9);
        let vuln: serde_json::Value = serde_json::from_str(&out).unwrap();
        out.clear();
        asset(&mut out, 7, 9 / VULNS_PER_ASSET);
        let asset: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(vuln["asset"]["uuid"], asset["id"]);
        for render in [compliance, was_vulnerability] {
            out.clear();
            render(&mut out, 7, 123);
            serde_json::from_str::<serde_json::Value>(&out).unwrap();
        }
    }
}
