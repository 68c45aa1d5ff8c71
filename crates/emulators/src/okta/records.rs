//! Users rendered on demand from (org, index), with ids that encode their index so that an `after`
//! cursor (the last user's id) can be resumed from; and a realistic System Log event.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::vendor::{mix, scramble, unscramble};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Generated timestamps count from here (2025-01-01T00:00:00Z).
const BASE: i64 = 1_735_689_600;

fn base62(mut x: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(x % 62) as usize];
        x /= 62;
    }
    String::from_utf8(digits).expect("ASCII")
}

fn unbase62(s: &str) -> Option<u64> {
    s.bytes().try_fold(0u64, |acc, b| {
        let digit = BASE62.iter().position(|&c| c == b)? as u64;
        acc.checked_mul(62)?.checked_add(digit)
    })
}

fn ts(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An org's users: `count + deprovisioned` of them, the deprovisioned ones spread evenly.
pub struct Users {
    pub tag: u64,
    pub count: u64,
    pub deprovisioned: u64,
}

impl Users {
    pub fn total(&self) -> u64 {
        self.count + self.deprovisioned
    }

    /// Okta-shaped (`00u` + 17 characters): 11 base-62 digits of the scrambled index, then the
    /// org's suffix.
    pub fn id(&self, i: u64) -> String {
        format!("00u{}{}", base62(scramble(i, self.tag), 11), base62(self.tag, 6))
    }

    pub fn index(&self, id: &str) -> Option<u64> {
        let digits = id.strip_prefix("00u").filter(|rest| rest.len() == 17 && rest[11..] == base62(self.tag, 6))?;
        let i = unscramble(unbase62(&digits[..11])?, self.tag);
        (i < self.total()).then_some(i)
    }

    pub fn status(&self, i: u64) -> &'static str {
        let (d, t) = (u128::from(self.deprovisioned), u128::from(self.total()));
        let i = u128::from(i);
        if (i + 1) * d / t > i * d / t {
            return "DEPROVISIONED";
        }
        match mix(self.tag ^ i as u64) % 20 {
            0 => "SUSPENDED",
            1 => "LOCKED_OUT",
            2 => "PROVISIONED",
            3 => "PASSWORD_EXPIRED",
            _ => "ACTIVE",
        }
    }

    pub fn render(&self, out: &mut String, base: &str, i: u64) {
        let r = mix(self.tag ^ i);
        let id = self.id(i);
        let created = BASE + (r >> 24 & 0xff_ffff) as i64;
        let first = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"][(r % 8) as usize];
        let last = ["Smith", "Jones", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Moore"][(r >> 3) as usize % 8];
        let login = format!("{}.{}{i}@example.com", first.to_lowercase(), last.to_lowercase());
        let status = self.status(i);
        let last_login = if status == "PROVISIONED" { "null".to_string() } else { format!(r#""{}""#, ts(created + 86_400 * 20)) };
        let _ = write!(
            out,
            r#"{{"id":"{id}","status":"{status}","created":"{created}","activated":"{activated}","statusChanged":"{activated}","lastLogin":{last_login},"lastUpdated":"{updated}","passwordChanged":"{activated}","type":{{"id":"oty{tag}"}},"profile":{{"firstName":"{first}","lastName":"{last}","mobilePhone":null,"secondEmail":null,"login":"{login}","email":"{login}","displayName":"{first} {last}","title":"Engineer","department":"{department}","organization":"Example Corp","employeeNumber":"{i}","countryCode":"US","zipCode":"94105"}},"credentials":{{"password":{{}},"provider":{{"type":"OKTA","name":"OKTA"}}}},"_links":{{"self":{{"href":"{base}/api/v1/users/{id}"}}}}}}"#,
            created = ts(created),
            activated = ts(created + 3600),
            updated = ts(created + 86_400 * 30),
            tag = base62(self.tag, 17),
            department = ["R&D", "Sales", "Finance", "IT"][(r >> 6) as usize % 4],
        );
    }
}

/// A System Log event shaped like the API reference's example: a user session start numbered `n`.
pub fn sample_log_event(n: u64, published: DateTime<Utc>) -> Value {
    let r = mix(n ^ 0x0c7a);
    let outcome = if r.is_multiple_of(7) { "FAILURE" } else { "SUCCESS" };
    json!({
        "version": "0",
        "severity": if outcome == "FAILURE" { "WARN" } else { "INFO" },
        "client": {
            "zone": "OFF_NETWORK",
            "device": "Computer",
            "userAgent": {"os": "Mac OS X", "browser": "CHROME", "rawUserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) Chrome/122.0"},
            "ipAddress": format!("12.97.{}.{}", (r >> 8) as u8, (r >> 16) as u8),
            "geographicalContext": {"city": "San Francisco", "state": "California", "country": "United States", "postalCode": "94105", "geolocation": {"lat": 37.79, "lon": -122.4}},
        },
        "actor": {"id": format!("00u{}", base62(r, 17)), "type": "User", "alternateId": format!("user{n}@example.com"), "displayName": format!("User {n}")},
        "outcome": {"result": outcome},
        "uuid": crate::vendor::uuid_of(0x0c7a, n),
        "published": published.to_rfc3339_opts(SecondsFormat::Millis, true),
        "eventType": "user.session.start",
        "displayMessage": "User login to Okta",
        "transaction": {"type": "WEB", "id": base62(mix(r), 11)},
        "debugContext": {"debugData": {"requestUri": "/login/do-login"}},
        "legacyEventType": if outcome == "FAILURE" { "core.user_auth.login_failed" } else { "core.user_auth.login_success" },
        "authenticationContext": {"authenticationStep": 0, "externalSessionId": base62(mix(r ^ 1), 11)},
        "securityContext": {"asNumber": 7018, "asOrg": "at&t", "isp": "at&t", "domain": "att.net", "isProxy": false},
        "request": {"ipChain": [{"ip": format!("12.97.{}.{}", (r >> 8) as u8, (r >> 16) as u8), "version": "V4", "source": null}]},
        "target": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_decode_and_deprovisioned_users_are_spread() {
        let users = Users { tag: 42, count: 90, deprovisioned: 10 };
        assert!((0..100).all(|i| users.index(&users.id(i)) == Some(i)));
        assert_eq!(users.id(5).len(), 20);
        assert_eq!((0..100).filter(|&i| users.status(i) == "DEPROVISIONED").count(), 10);
        let mut out = String::new();
        users.render(&mut out, "http://o", 3);
        let user: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(user["id"], users.id(3));
        assert_eq!(Users { tag: 43, count: 90, deprovisioned: 10 }.index(&users.id(1)), None);
    }
}
