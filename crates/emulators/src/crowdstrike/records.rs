//! Generated hosts, Zero Trust assessments and Spotlight vulnerabilities: record `i` of a tenant is
//! rendered on demand from `i` and the tenant's CID, straight to JSON text, so a benchmark's
//! millions of records cost nothing to hold. Host ids encode their index, so the entity
//! endpoints can look an id up without a table.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat};

use crate::net::json_str;
use crate::vendor::{hash, mix, scramble, unscramble};

/// Generated timestamps count from here (2025-01-01T00:00:00Z).
const BASE: i64 = 1_735_689_600;
fn ts(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A tenant's id space: its CID and the hash that prefixes its host ids.
pub struct Tenant {
    /// The CID as a JSON string literal.
    cid: String,
    tag: u64,
}

impl Tenant {
    pub fn new(cid: &str) -> Tenant {
        Tenant { cid: json_str(cid), tag: hash(cid) }
    }

    /// Host `i`'s `device_id` (`aid`): 32 hex digits, the tenant's tag then the scrambled index.
    pub fn host_id(&self, i: u64) -> String {
        format!("{:016x}{:016x}", self.tag, scramble(i, self.tag))
    }

    /// The index of one of this tenant's host ids below `count`.
    pub fn host_index(&self, id: &str, count: u64) -> Option<u64> {
        if id.len() != 32 || u64::from_str_radix(&id[..16], 16).ok()? != self.tag {
            return None;
        }
        let i = unscramble(u64::from_str_radix(&id[16..], 16).ok()?, self.tag);
        (i < count).then_some(i)
    }

    /// The device object of `PostDeviceDetailsV2`.
    pub fn device(&self, out: &mut String, i: u64) {
        let r = mix(self.tag ^ i);
        let (platform, os_version, os_build, product) = match r % 10 {
            0..=5 => ("Windows", "Windows 11", "22631", "Workstation"),
            6 => ("Windows", "Windows Server 2022", "20348", "Server"),
            7 | 8 => ("Mac", "Sonoma (14)", "23E224", "Workstation"),
            _ => ("Linux", "Ubuntu 22.04", "5.15.0-105-generic", "Server"),
        };
        let first = BASE + (r >> 20 & 0xf_ffff) as i64;
        let last = first + 86_400 * (1 + (r >> 40 & 0xff) as i64);
        let (a, b) = ((r >> 8) as u8, (r >> 16) as u8);
        let _ = write!(
            out,
            r#"{{"device_id":"{id}","cid":{cid},"agent_version":"7.{minor:02}.{build}.0","bios_manufacturer":"Dell Inc.","bios_version":"1.{bios}.0","connection_ip":"10.{a}.{b}.{c}","external_ip":"81.2.{a}.{b}","first_seen":"{first}","last_seen":"{last}","groups":[],"hostname":"host-{i:06}","local_ip":"10.{a}.{b}.{c}","mac_address":"14-7d-da-{a:02x}-{b:02x}-{c:02x}","machine_domain":"CORP","modified_timestamp":"{last}","os_build":"{os_build}","os_version":"{os_version}","ou":[],"platform_name":"{platform}","policies":[{{"policy_type":"prevention","policy_id":"{policy:032x}","applied":true}}],"product_type_desc":"{product}","provision_status":"Provisioned","reduced_functionality_mode":"no","serial_number":"SN{serial:010X}","site_name":"Default-First-Site-Name","status":"normal","system_manufacturer":"Dell Inc.","system_product_name":"Latitude 7440","tags":[],"last_login_user":"user{i}","device_policies":{{"prevention":{{"applied":true,"applied_date":"{first}","policy_id":"{policy:032x}","policy_type":"prevention"}}}},"meta":{{"version":"{version}"}}}}"#,
            id = self.host_id(i),
            cid = self.cid,
            minor = r % 30,
            build = 17_000 + r % 900,
            bios = r % 30,
            c = (r >> 24) as u8,
            first = ts(first),
            last = ts(last),
            policy = self.tag as u128,
            serial = r >> 24,
            version = 1000 + r % 9000,
        );
    }

    /// Hosts with no assessment yet: the API leaves them out of the results.
    pub fn assessed(&self, i: u64) -> bool {
        !mix(self.tag ^ i ^ 0x2a).is_multiple_of(10)
    }

    /// The Zero Trust assessment of host `i`.
    pub fn assessment(&self, out: &mut String, i: u64) {
        let r = mix(self.tag ^ i ^ 0x2a);
        let (platform, product) = if r.is_multiple_of(5) { ("Lin", "Server") } else { ("Win", "Workstation") };
        let (os, sensor) = (30 + r % 70, 40 + (r >> 8) % 60);
        let _ = write!(
            out,
            r#"{{"aid":"{aid}","cid":{cid},"event_platform":"{platform}","product_type_desc":"{product}","sensor_file_status":"deployed","system_serial_number":"SN{serial:010X}","modified_time":"{modified}","assessment":{{"overall":{overall},"os":{os},"sensor_config":{sensor},"version":"3.6.1"}},"assessment_items":{{"os_signals":[{{"signal_id":"application_guard_win","signal_name":"Application Guard","group_name":"Exploit protection","criteria":"Enabled","meets_criteria":"{guard}"}}],"sensor_signals":[{{"signal_id":"ml_cloud_anti_malware_win","signal_name":"Cloud Anti-malware","group_name":"Machine learning","criteria":"Moderate","meets_criteria":"yes"}}]}}}}"#,
            aid = self.host_id(i),
            cid = self.cid,
            serial = mix(self.tag ^ i) >> 24,
            modified = ts(BASE + (r >> 24 & 0xf_ffff) as i64),
            overall = (os + sensor) / 2,
            guard = if os > 60 { "yes" } else { "no" },
        );
    }

    /// Spotlight vulnerability `i`, on host `i % hosts`, with the facets asked for.
    pub fn vulnerability(&self, out: &mut String, i: u64, hosts: u64, facets: &Facets) {
        let r = mix(self.tag ^ i ^ 0x5f07);
        let host = i % hosts.max(1);
        let aid = self.host_id(host);
        let cve = format!("CVE-20{:02}-{}", 18 + r % 8, 1000 + (r >> 8) % 50_000);
        let created = BASE + (r >> 32 & 0xf_ffff) as i64;
        let (score, severity) = match r % 4 {
            0 => (9.8, "CRITICAL"),
            1 => (7.5, "HIGH"),
            2 => (5.3, "MEDIUM"),
            _ => (3.1, "LOW"),
        };
        let product = ["openssh", "openssl", "curl", "chrome", "firefox"][(r >> 4) as usize % 5];
        let _ = write!(
            out,
            r#"{{"id":"{aid}_{hash:016x}{hash2:016x}","cid":{cid},"aid":"{aid}","vulnerability_id":"{cve}","status":"open","confidence":"confirmed","created_timestamp":"{created}","updated_timestamp":"{updated}","app":{{"vendor_normalized":"Vendor","product_name_version":"{product} 1.{minor}","product_name_normalized":"{product}"}},"apps":[{{"product_name_version":"{product} 1.{minor}","sub_status":"open","remediation":{{"ids":["{rem:032x}"]}},"evaluation_logic":{{"id":"{rem:032x}"}}}}],"data_providers":[{{"provider":"Falcon sensor"}}],"suppression_info":{{"is_suppressed":false}}"#,
            hash = mix(r),
            hash2 = mix(r ^ 1),
            cid = self.cid,
            created = ts(created),
            updated = ts(created + 3600),
            minor = r % 20,
            rem = u128::from(mix(r ^ 2)) << 64 | u128::from(mix(r ^ 3)),
        );
        if facets.cve {
            let _ = write!(
                out,
                r#","cve":{{"id":"{cve}","base_score":{score},"severity":"{severity}","exprt_rating":"{severity}","exploit_status":{exploit},"remediation_level":"O","cisa_info":{{"is_cisa_kev":{kev}}},"vector":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","published_date":"{published}"}}"#,
                exploit = [0, 30, 60, 90][(r >> 12) as usize % 4],
                kev = r.is_multiple_of(13),
                published = ts(created - 86_400 * 30),
            );
        }
        if facets.host_info {
            let _ = write!(
                out,
                r#","host_info":{{"hostname":"host-{host:06}","local_ip":"10.{a}.{b}.{c}","os_version":"Windows 11","platform":"Windows","asset_criticality":"Unassigned","internet_exposure":"No","groups":[],"tags":[]}}"#,
                a = (mix(self.tag ^ host) >> 8) as u8,
                b = (mix(self.tag ^ host) >> 16) as u8,
                c = (mix(self.tag ^ host) >> 24) as u8,
            );
        }
        if facets.remediation {
            let _ = write!(
                out,
                r#","remediation":{{"ids":["{rem:032x}"],"entities":[{{"id":"{rem:032x}","title":"Update {product}","action":"Update {product} to the latest version","link":"https://nvd.nist.gov/vuln/detail/{cve}"}}]}}"#,
                rem = u128::from(mix(r ^ 2)) << 64 | u128::from(mix(r ^ 3)),
            );
        }
        out.push('}');
    }
}

/// Which of Spotlight's facets a query asked for (repeated or comma-joined `facet`).
#[derive(Default)]
pub struct Facets {
    pub cve: bool,
    pub host_info: bool,
    pub remediation: bool,
}

impl Facets {
    /// Unknown facet names are refused, as the API does.
    pub fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Result<Facets, String> {
        let mut facets = Facets::default();
        for name in values.flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "cve" => facets.cve = true,
                "host_info" => facets.host_info = true,
                "remediation" => facets.remediation = true,
                "evaluation_logic" => {}
                other => return Err(format!("invalid facet: {other}")),
            }
        }
        Ok(facets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_decode_to_their_index() {
        let t = Tenant::new("92012896127c4948236ba7601b886b0");
        for i in [0, 1, 2, 4999, 19_999, 1 << 40] {
            assert_eq!(t.host_index(&t.host_id(i), u64::MAX), Some(i));
        }
        assert_eq!(t.host_index(&t.host_id(10), 10), None);
        assert_eq!(Tenant::new("other").host_index(&t.host_id(1), 10), None);
    }

    #[test]
    fn records_are_json() {
        let t = Tenant::new("cid");
        let mut out = String::new();
        t.device(&mut out, 3);
        let device: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(device["device_id"], t.host_id(3));
        out.clear();
        t.assessment(&mut out, 3);
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
        out.clear();
        t.vulnerability(&mut out, 7, 5, &Facets { cve: true, host_info: true, remediation: true });
        let vuln: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(vuln["aid"], t.host_id(2));
        assert!(vuln["cve"]["id"].as_str().unwrap().starts_with("CVE-"));
    }
}
