//! Credentials written inside URLs (`https://user:password@host/`) must not leave sluice as
//! text: errors, log lines, sink statistics, dead-letter reasons and API answers pass through
//! [`redact_urls`] where they may hold a URL.

/// Characters that end a URL's authority (`host[:port]` with its userinfo), as URL parsers
/// read it, plus those that end a URL quoted in text. Tabs and line breaks are not among them:
/// URL parsers drop them wherever they are.
fn ends_authority(c: char) -> bool {
    matches!(c, '/' | '?' | '#' | '\\' | '"' | '\'' | '<' | '>' | '`') || (c.is_whitespace() && !matches!(c, '\t' | '\n' | '\r'))
}

/// `text` with the userinfo of every URL in it replaced by `***`: `scheme://user:pass@host/`
/// becomes `scheme://***@host/`. The userinfo is what the authority holds before its last `@`,
/// so a password containing `@` is hidden whole. Text without `://` is returned unchanged.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail.find(ends_authority).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(i) => {
                out.push_str("***");
                out.push_str(&authority[i..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn userinfo_is_replaced_everywhere_and_the_rest_kept() {
        let cases = [
            ("POST http://user:pw@host:8080/x: refused", "POST http://***@host:8080/x: refused"),
            ("https://token@es.example.org", "https://***@es.example.org"),
            ("a http://u:p@h/ and https://v:q@k?x=1#f", "a http://***@h/ and https://***@k?x=1#f"),
            ("\"url\":\"http://u:p@ss@h/\"", "\"url\":\"http://***@h/\""),
            ("(http://u:p@h)", "(http://***@h)"),
            ("http://h/path?mail=a@b.org", "http://h/path?mail=a@b.org"),
            ("http://host:9200 said no, ask admin@example.org", "http://host:9200 said no, ask admin@example.org"),
            ("http://***@h/", "http://***@h/"),
            ("no url here: user:pw@host", "no url here: user:pw@host"),
            ("", ""),
            ("trailing ://", "trailing ://"),
            ("é http://ü:ß@hôst/ é", "é http://***@hôst/ é"),
        ];
        for (text, want) in cases {
            assert_eq!(redact_urls(text), want, "{text}");
        }
    }

    /// What may stand in a password as a config holds it: anything but what ends a URL's
    /// authority (a parser would not read such a URL; sluice refuses it).
    fn secret() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._~!$&()*+,;=:@%\u{e9}\u{4e2d}-]{1,24}".prop_map(|s| format!("SECRET{s}"))
    }

    proptest! {
        #[test]
        fn no_password_survives(
            before in "[a-z :,.()\\[\\]{}\"=\n]{0,30}",
            after in "[a-z :,.()\\[\\]{}\"=\n/?#]{0,30}",
            scheme in "(http|https|tcp|redis)",
            user in "[a-z0-9%.-]{0,10}",
            password in secret(),
            host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
            path in "(/[a-z0-9]{0,8})?",
        ) {
            let text = format!("{before}{scheme}://{user}:{password}@{host}{path}{after}");
            let out = redact_urls(&text);
            prop_assert!(!out.contains(&password), "{} → {}", text, out);
            prop_assert!(out.contains(&format!("{scheme}://***@{host}{path}")), "{} → {}", text, out);
            prop_assert_eq!(redact_urls(&out), out.clone(), "idempotent");
        }

        #[test]
        fn text_without_userinfo_is_unchanged(text in "[a-z :/.?#=\n-]{0,60}") {
            prop_assert_eq!(redact_urls(&text), text);
        }
    }
}
