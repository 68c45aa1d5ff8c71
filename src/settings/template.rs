//! Output path templates: `%TAG %TENANCY %UUID %YYYY %MM %DD %hh %mm %ss` (the original data collectors'
//! variables). `%UUID` is rendered last and once per output file, never once per occurrence.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::event::Event;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Tag,
    Tenancy,
    Uuid,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    parts: Vec<Part>,
}

const VARIABLES: &[(&str, Part)] = &[
    ("TENANCY", Part::Tenancy),
    ("YYYY", Part::Year),
    ("UUID", Part::Uuid),
    ("TAG", Part::Tag),
    ("MM", Part::Month),
    ("DD", Part::Day),
    ("hh", Part::Hour),
    ("mm", Part::Minute),
    ("ss", Part::Second),
];

/// Stands for `%UUID` in a rendered key until the file's UUID is known. NUL cannot be in a path.
pub const UUID_MARK: &str = "\0UUID\0";

impl PathTemplate {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("path must not be empty".into());
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(pos) = rest.find('%') {
            literal.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(stripped) = after.strip_prefix('%') {
                literal.push('%');
                rest = stripped;
                continue;
            }
            let (name, part) = VARIABLES.iter().find(|(name, _)| after.starts_with(name)).ok_or_else(|| {
                format!(
                    "unknown variable at `%{}`; known: %TAG %TENANCY %UUID %YYYY %MM %DD %hh %mm %ss (write %% for a literal %)",
                    after.chars().take(8).collect::<String>()
                )
            })?;
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(part.clone());
            rest = &after[name.len()..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(PathTemplate { parts })
    }

    /// Renders everything but `%UUID`, which stays as [`UUID_MARK`]. Tenant and source names are
    /// validated at config load, so the result cannot leave the template's directory.
    pub fn render_key(&self, event: &Event, out: &mut String) {
        self.render(&event.tenant, &event.source, event.received_at, UUID_MARK, out)
    }

    /// Renders with the given values: `tag` for `%TAG`, `uuid` for `%UUID`, `t` for the date.
    pub fn render(&self, tenant: &str, tag: &str, t: DateTime<Utc>, uuid: &str, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Tag => out.push_str(tag),
                Part::Tenancy => out.push_str(tenant),
                Part::Uuid => out.push_str(uuid),
                Part::Year => out.push_str(&format!("{:04}", t.year())),
                Part::Month => out.push_str(&format!("{:02}", t.month())),
                Part::Day => out.push_str(&format!("{:02}", t.day())),
                Part::Hour => out.push_str(&format!("{:02}", t.hour())),
                Part::Minute => out.push_str(&format!("{:02}", t.minute())),
                Part::Second => out.push_str(&format!("{:02}", t.second())),
            }
        }
    }

    /// The path when the template has no variables.
    pub fn constant(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Literal(s)] => Some(s),
            _ => None,
        }
    }

    pub fn has_uuid(&self) -> bool {
        self.parts.contains(&Part::Uuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event() -> Event {
        Event {
            id: "1".into(),
            tenant: "acme".into(),
            source: "eve".into(),
            vendor: "json".into(),
            received_at: Utc.with_ymd_and_hms(2024, 7, 5, 4, 3, 2).unwrap(),
            raw: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
            mapped: None,
        }
    }

    #[test]
    fn renders_every_variable() {
        let t = PathTemplate::parse("out/%TENANCY/%TAG/%YYYY-%MM-%DD_%hh%mm%ss_%UUID.%UUID.json").unwrap();
        let mut key = String::new();
        t.render_key(&event(), &mut key);
        assert_eq!(key, format!("out/acme/eve/2024-07-05_040302_{UUID_MARK}.{UUID_MARK}.json"));
        assert!(t.has_uuid());
    }

    #[test]
    fn rejects_unknown_variables_but_takes_the_original_relative_default() {
        assert!(PathTemplate::parse("out/%TENANT.json").unwrap_err().contains("%TENANT"));
        // The original data collectors' default `STORE_FILE`; only the variables are checked
        // (tenant and source names cannot hold a `/` or `..`).
        assert!(PathTemplate::parse("../data/source/%TAG/%TENANCY.json").is_ok());
        assert!(PathTemplate::parse("100%%/%TAG").is_ok());
    }
}
