//! Syslog messages: RFC 5424 (header, structured data, message) and RFC 3164 (BSD), and the
//! RFC 6587 framings. Pure functions.
//!
//! Header fields are reduced to what the RFCs allow (printable US-ASCII, bounded length, `-`
//! when empty); structured-data values escape `"`, `\` and `]`; no message ever contains a raw
//! line break, so even newline framing cannot be split by an event's content.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Ntp,
    Security,
    Console,
    Solaris,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Syslog severity of a level: critical → 2 (crit), high → 3 (err), medium → 4 (warning),
/// low → 5 (notice), info → 6 (informational).
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Critical => 2,
        Level::High => 3,
        Level::Medium => 4,
        Level::Low => 5,
        Level::Info => 6,
    }
}

/// The fixed parts of every message of a sink.
#[derive(Debug, Clone)]
pub struct Header {
    pub facility: Facility,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
}

impl Header {
    pub fn new(facility: Facility, hostname: &str, app_name: &str) -> Header {
        Header {
            facility,
            hostname: header_field(hostname, 255),
            app_name: header_field(app_name, 48),
            procid: std::process::id().to_string(),
        }
    }
}

/// One structured-data element: an SD-ID and its parameters.
pub struct SdElement<'a> {
    pub id: &'a str,
    pub params: Vec<(&'a str, &'a str)>,
}

/// Printable US-ASCII only (others become `_`), at most `max` characters, `-` when empty.
pub fn header_field(s: &str, max: usize) -> String {
    let cleaned: String = s.chars().map(|c| if ('!'..='~').contains(&c) { c } else { '_' }).take(max).collect();
    if cleaned.is_empty() { "-".into() } else { cleaned }
}

/// SD-NAME: printable US-ASCII except `=`, space, `]` and `"`, at most 32 characters.
pub fn sd_name(s: &str) -> String {
    let cleaned: String =
        s.chars().map(|c| if ('!'..='~').contains(&c) && !matches!(c, '=' | ']' | '"') { c } else { '_' }).take(32).collect();
    if cleaned.is_empty() { "_".into() } else { cleaned }
}

/// An RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`.
pub fn rfc5424(header: &Header, severity: u8, time: DateTime<Utc>, msgid: &str, sd: &[SdElement], msg: &str, out: &mut Vec<u8>) {
    let pri = header.facility.code() as u16 * 8 + severity as u16;
    let time = time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    out.extend_from_slice(
        format!("<{pri}>1 {time} {} {} {} {} ", header.hostname, header.app_name, header.procid, header_field(msgid, 32)).as_bytes(),
    );
    if sd.is_empty() {
        out.push(b'-');
    }
    for element in sd {
        out.push(b'[');
        out.extend_from_slice(sd_name(element.id).as_bytes());
        for (name, value) in &element.params {
            out.push(b' ');
            out.extend_from_slice(sd_name(name).as_bytes());
            out.extend_from_slice(b"=\"");
            if !value.bytes().any(|b| matches!(b, b'"' | b'\\' | b']' | b'\r' | b'\n')) {
                out.extend_from_slice(value.as_bytes());
                out.push(b'"');
                continue;
            }
            for c in value.chars() {
                match c {
                    '"' | '\\' | ']' => {
                        out.push(b'\\');
                        out.push(c as u8);
                    }
                    '\r' | '\n' => out.push(b' '),
                    c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            out.push(b'"');
        }
        out.push(b']');
    }
    if !msg.is_empty() {
        out.push(b' ');
        push_without_breaks(msg, out);
    }
}

/// An RFC 3164 message: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG` (local time is not known to
/// the receiver, so UTC is written).
pub fn rfc3164(header: &Header, severity: u8, time: DateTime<Utc>, msg: &str, out: &mut Vec<u8>) {
    let pri = header.facility.code() as u16 * 8 + severity as u16;
    let tag: String = header.app_name.chars().filter(|c| c.is_ascii_alphanumeric()).take(32).collect();
    let tag = if tag.is_empty() { "sluice".to_string() } else { tag };
    out.extend_from_slice(format!("<{pri}>{} {} {tag}[{}]: ", time.format("%b %e %H:%M:%S"), header.hostname, header.procid).as_bytes());
    push_without_breaks(msg, out);
}

fn push_without_breaks(msg: &str, out: &mut Vec<u8>) {
    if msg.bytes().any(|b| b == b'\r' || b == b'\n') {
        out.extend_from_slice(msg.replace(['\r', '\n'], " ").as_bytes());
    } else {
        out.extend_from_slice(msg.as_bytes());
    }
}

/// Cuts `message` to at most `max` bytes on a UTF-8 character boundary. Returns whether it cut.
pub fn truncate(message: &mut Vec<u8>, max: usize) -> bool {
    if message.len() <= max {
        return false;
    }
    let mut end = max;
    // Back off continuation bytes (10xxxxxx) so the cut falls between characters.
    while end > 0 && (message[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    message.truncate(end);
    true
}

#[cfg(test)]
pub(crate) mod parse {
    //! A strict RFC 5424 parser for tests.

    #[derive(Debug, PartialEq)]
    pub struct Message {
        pub pri: u16,
        pub timestamp: String,
        pub hostname: String,
        pub app_name: String,
        pub procid: String,
        pub msgid: String,
        pub sd: Vec<(String, Vec<(String, String)>)>,
        pub msg: String,
    }

    pub fn parse(line: &str) -> Result<Message, String> {
        if line.contains(['\n', '\r']) {
            return Err("raw line break".into());
        }
        let rest = line.strip_prefix('<').ok_or("no PRI")?;
        let (pri, rest) = rest.split_once('>').ok_or("PRI not closed")?;
        let pri: u16 = pri.parse().map_err(|_| format!("bad PRI {pri:?}"))?;
        if pri > 191 {
            return Err(format!("PRI {pri} out of range"));
        }
        let rest = rest.strip_prefix("1 ").ok_or("not version 1")?;
        let mut fields = rest.splitn(6, ' ');
        let mut next = |what: &str, max: usize| -> Result<String, String> {
            let f = fields.next().ok_or(format!("missing {what}"))?;
            if f.is_empty() || f.len() > max || !f.chars().all(|c| ('!'..='~').contains(&c)) {
                return Err(format!("bad {what} {f:?}"));
            }
            Ok(f.to_string())
        };
        let timestamp = next("TIMESTAMP", 64)?;
        chrono::DateTime::parse_from_rfc3339(&timestamp).map_err(|e| format!("bad TIMESTAMP: {e}"))?;
        let hostname = next("HOSTNAME", 255)?;
        let app_name = next("APP-NAME", 48)?;
        let procid = next("PROCID", 128)?;
        let msgid = next("MSGID", 32)?;
        let rest = fields.next().ok_or("missing STRUCTURED-DATA")?;
        let (sd, rest) = parse_sd(rest)?;
        let msg = match rest {
            "" => String::new(),
            r => r.strip_prefix(' ').ok_or("no space before MSG")?.to_string(),
        };
        Ok(Message { pri, timestamp, hostname, app_name, procid, msgid, sd, msg })
    }

    #[allow(clippy::type_complexity)]
    fn parse_sd(s: &str) -> Result<(Vec<(String, Vec<(String, String)>)>, &str), String> {
        if let Some(rest) = s.strip_prefix('-') {
            return Ok((vec![], rest));
        }
        let mut out = Vec::new();
        let mut chars = s.char_indices().peekable();
        while let Some(&(_, '[')) = chars.peek() {
            chars.next();
            let mut id = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c == ' ' || c == ']' {
                    break;
                }
                id.push(c);
                chars.next();
            }
            let mut params = Vec::new();
            loop {
                match chars.next() {
                    Some((_, ']')) => break,
                    Some((_, ' ')) => {
                        let mut name = String::new();
                        for (_, c) in chars.by_ref() {
                            if c == '=' {
                                break;
                            }
                            name.push(c);
                        }
                        if chars.next().map(|x| x.1) != Some('"') {
                            return Err("PARAM-VALUE not quoted".into());
                        }
                        let mut value = String::new();
                        loop {
                            match chars.next().ok_or("PARAM-VALUE not closed")?.1 {
                                '\\' => {
                                    let (_, c) = chars.next().ok_or("dangling escape")?;
                                    if !matches!(c, '"' | '\\' | ']') {
                                        value.push('\\');
                                    }
                                    value.push(c);
                                }
                                '"' => break,
                                ']' => return Err("unescaped ] in PARAM-VALUE".into()),
                                c => value.push(c),
                            }
                        }
                        params.push((name, value));
                    }
                    other => return Err(format!("bad SD-ELEMENT at {other:?}")),
                }
            }
            out.push((id, params));
        }
        let at = chars.peek().map(|&(i, _)| i).unwrap_or(s.len());
        if out.is_empty() {
            return Err("no STRUCTURED-DATA".into());
        }
        Ok((out, &s[at..]))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn header() -> Header {
        Header::new(Facility::Local4, "host.example", "sluice")
    }

    #[test]
    fn rfc5424_message_matches_the_rfc_layout() {
        let mut out = Vec::new();
        let t = DateTime::parse_from_rfc3339("2003-10-11T22:14:15.003Z").unwrap().with_timezone(&Utc);
        let sd = [SdElement { id: "sluice@32473", params: vec![("tenant", "acme"), ("note", "a \"b\" c\\d]")] }];
        rfc5424(&header(), 5, t, "alert", &sd, "line1\nline2", &mut out);
        let text = String::from_utf8(out).unwrap();
        let pid = std::process::id();
        assert_eq!(
            text,
            format!(
                "<165>1 2003-10-11T22:14:15.003000Z host.example sluice {pid} alert [sluice@32473 tenant=\"acme\" note=\"a \\\"b\\\" c\\\\d\\]\"] line1 line2"
            )
        );
    }

    #[test]
    fn rfc3164_message_has_the_bsd_layout() {
        let mut out = Vec::new();
        let t = DateTime::parse_from_rfc3339("2003-10-01T02:14:15Z").unwrap().with_timezone(&Utc);
        rfc3164(&Header::new(Facility::Auth, "mymachine", "su-app"), 2, t, "'su root' failed", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("<34>Oct  1 02:14:15 mymachine suapp[{}]: 'su root' failed", std::process::id())
        );
    }

    #[test]
    fn header_fields_are_printable_ascii_and_never_empty() {
        assert_eq!(header_field("my host", 255), "my_host");
        assert_eq!(header_field("", 48), "-");
        assert_eq!(header_field(&"x".repeat(60), 48).len(), 48);
        assert_eq!(sd_name("a=b]c\"d e"), "a_b_c_d_e");
    }

    #[test]
    fn truncation_cuts_between_characters() {
        let mut m = "aé€".as_bytes().to_vec(); // 1 + 2 + 3 bytes
        assert!(truncate(&mut m, 4));
        assert_eq!(m, "aé".as_bytes());
        let mut m = b"short".to_vec();
        assert!(!truncate(&mut m, 10));
    }

    proptest! {
        #[test]
        fn any_values_survive_a_strict_rfc5424_parser(
            hostname in ".*", app in ".*", msgid in ".*", tenant in ".*", note in ".*", msg in ".*",
            severity in 0u8..8, millis in 0i64..4_102_444_800_000,
        ) {
            let h = Header::new(Facility::Local0, &hostname, &app);
            let t = DateTime::from_timestamp_millis(millis).unwrap();
            let sd = [SdElement { id: "sluice@32473", params: vec![("tenant", &tenant), ("note", &note)] }];
            let mut out = Vec::new();
            rfc5424(&h, severity, t, &msgid, &sd, &msg, &mut out);
            let line = String::from_utf8(out).unwrap();
            let m = parse::parse(&line).map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?;
            prop_assert_eq!(m.pri, 16 * 8 + severity as u16);
            prop_assert_eq!(m.hostname, header_field(&hostname, 255));
            prop_assert_eq!(m.msgid, header_field(&msgid, 32));
            let flat = |s: &str| s.replace(['\r', '\n'], " ");
            prop_assert_eq!(&m.sd[0].1, &vec![("tenant".to_string(), flat(&tenant)), ("note".to_string(), flat(&note))]);
            prop_assert_eq!(m.msg, flat(&msg));
        }
    }
}
