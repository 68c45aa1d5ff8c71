//! Request templates: text with `{{…}}` placeholders filled in per request.
//!
//! | placeholder | value |
//! |---|---|
//! | `{{cursor}}` | a stream's saved position |
//! | `{{parent/ptr}}` | a member of the `for_each` record (a JSON pointer) |
//! | `{{ids}}` | the page's records, for `expand`; alone in a value it is the list itself |
//! | `{{job}}`, `{{chunk}}` | an export's job id and chunk id |
//! | `{{now}}`, `{{now-24h}}` | the time of the run (RFC 3339, UTC), optionally minus a duration |
//!
//! Placeholders are checked when the config loads, so a typo is an error with its path rather
//! than a request that goes out wrong.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Cursor,
    Parent(String),
    Ids,
    Job,
    Chunk,
    Now(Duration),
}

/// What the placeholders stand for in one request.
#[derive(Debug, Clone, Default)]
pub struct Vars<'a> {
    pub cursor: Option<&'a str>,
    pub parent: Option<&'a Value>,
    pub ids: Option<&'a [String]>,
    pub job: Option<&'a str>,
    pub chunk: Option<&'a str>,
    pub now: Option<DateTime<Utc>>,
}

/// A rendered value: text, or a list where the template is `{{ids}}` alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    Text(String),
    List(Vec<String>),
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| format!("`{{{{` without `}}}}` in `{text}`"))?;
            let name = after[..end].trim();
            parts.push(placeholder(name).map_err(|e| format!("`{{{{{name}}}}}` in `{text}`: {e}"))?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { text: text.to_string(), parts })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether it needs more than the clock (a cursor, a parent, ids …).
    pub fn uses_state(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Literal(_) | Part::Now(_)))
    }

    pub fn render(&self, vars: &Vars) -> Result<Rendered, String> {
        if let [Part::Ids] = self.parts.as_slice() {
            return Ok(Rendered::List(vars.ids.ok_or("{{ids}} is only known in `expand`")?.to_vec()));
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Cursor => out.push_str(vars.cursor.ok_or("{{cursor}} is only known in a stream")?),
                Part::Parent(ptr) => {
                    let parent = vars.parent.ok_or("{{parent…}} is only known with `for_each`")?;
                    match parent.pointer(ptr) {
                        Some(Value::String(s)) => out.push_str(s),
                        Some(Value::Null) | None => return Err(format!("the parent record has no `{ptr}`")),
                        Some(other) => out.push_str(&other.to_string()),
                    }
                }
                Part::Ids => out.push_str(&vars.ids.ok_or("{{ids}} is only known in `expand`")?.join(",")),
                Part::Job => out.push_str(vars.job.ok_or("{{job}} is only known in an export")?),
                Part::Chunk => out.push_str(vars.chunk.ok_or("{{chunk}} is only known in an export's chunk request")?),
                Part::Now(minus) => {
                    let now = vars.now.unwrap_or_else(Utc::now);
                    let at = now - chrono::Duration::from_std(*minus).map_err(|e| e.to_string())?;
                    out.push_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true));
                }
            }
        }
        Ok(Rendered::Text(out))
    }

    /// Renders to text; a list is joined with commas.
    pub fn render_text(&self, vars: &Vars) -> Result<String, String> {
        Ok(match self.render(vars)? {
            Rendered::Text(t) => t,
            Rendered::List(l) => l.join(","),
        })
    }
}

fn placeholder(name: &str) -> Result<Part, String> {
    Ok(match name {
        "cursor" => Part::Cursor,
        "ids" => Part::Ids,
        "job" => Part::Job,
        "chunk" => Part::Chunk,
        "now" => Part::Now(Duration::ZERO),
        _ => {
            if let Some(ptr) = name.strip_prefix("parent") {
                if !ptr.starts_with('/') {
                    return Err("write `parent/` and a JSON pointer, e.g. {{parent/id}}".into());
                }
                Part::Parent(ptr.to_string())
            } else if let Some(d) = name.strip_prefix("now-") {
                Part::Now(crate::settings::duration::parse(d.trim())?)
            } else {
                return Err("unknown placeholder; known: cursor, parent/<pointer>, ids, job, chunk, now, now-<duration>".into());
            }
        }
    })
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = crate::settings::secret::scalar_string(d)?;
        Template::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Renders every string of a JSON body template; `"{{ids}}"` alone becomes an array.
pub fn render_body(body: &Value, vars: &Vars) -> Result<Value, String> {
    Ok(match body {
        Value::String(s) => match Template::parse(s)?.render(vars)? {
            Rendered::Text(t) => Value::String(t),
            Rendered::List(l) => Value::Array(l.into_iter().map(Value::String).collect()),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| render_body(v, vars)).collect::<Result<_, _>>()?),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| Ok((k.clone(), render_body(v, vars)?))).collect::<Result<_, String>>()?)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn placeholders_render_from_their_vars() {
        let parent = serde_json::json!({"id": "o1", "n": 3});
        let ids = vec!["a".to_string(), "b".to_string()];
        let now = Utc.with_ymd_and_hms(2024, 7, 15, 12, 0, 0).unwrap();
        let vars = Vars { cursor: Some("c1"), parent: Some(&parent), ids: Some(&ids), now: Some(now), ..Vars::default() };
        let t = Template::parse("/orgs/{{parent/id}}/x?n={{ parent/n }}&since={{cursor}}&from={{now-24h}}&ids={{ids}}").unwrap();
        assert_eq!(t.render_text(&vars).unwrap(), "/orgs/o1/x?n=3&since=c1&from=2024-07-14T12:00:00Z&ids=a,b");
        assert_eq!(Template::parse("{{ids}}").unwrap().render(&vars).unwrap(), Rendered::List(ids.clone()));
        assert!(t.uses_state());
        assert!(!Template::parse("{{now-1h}}").unwrap().uses_state());
    }

    #[test]
    fn mistakes_are_refused_when_parsed_or_rendered() {
        assert!(Template::parse("{{curser}}").unwrap_err().contains("unknown placeholder"));
        assert!(Template::parse("{{parent.id}}").unwrap_err().contains("parent/"));
        assert!(Template::parse("{{cursor").is_err());
        assert!(Template::parse("{{now-3 fortnights}}").is_err());
        let err = Template::parse("{{parent/missing}}").unwrap().render(&Vars { parent: Some(&Value::Null), ..Vars::default() });
        assert!(err.unwrap_err().contains("/missing"));
    }
}
