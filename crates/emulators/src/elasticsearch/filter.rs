//! `filter_path`, which shippers use to shrink bulk responses (Logstash asks for
//! `errors,items.*.error,items.*.status`): dot-separated paths with `*` globs and `**` for any
//! depth, `-` for exclusions; arrays are transparent; objects and arrays left empty disappear.

use serde_json::{Map, Value};

use crate::net::glob_match;

type Path<'a> = &'a [&'a str];

pub(super) fn filter_path(value: Value, spec: &str) -> Value {
    let parsed: Vec<(bool, Vec<&str>)> = spec
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.strip_prefix('-') {
            Some(p) => (false, p.split('.').collect()),
            None => (true, p.split('.').collect()),
        })
        .collect();
    let includes: Vec<Path<'_>> = parsed.iter().filter(|(inc, _)| *inc).map(|(_, p)| p.as_slice()).collect();
    let excludes: Vec<Path<'_>> = parsed.iter().filter(|(inc, _)| !*inc).map(|(_, p)| p.as_slice()).collect();
    let mut value = if includes.is_empty() { value } else { include(value, &includes).unwrap_or(Value::Object(Map::new())) };
    if !excludes.is_empty() {
        value = exclude(value, &excludes).unwrap_or(Value::Object(Map::new()));
    }
    value
}

/// For a member `key`, the paths that continue below it, and whether one ends on it.
fn step<'a>(paths: &[Path<'a>], key: &str) -> (bool, Vec<Path<'a>>) {
    let mut whole = false;
    let mut below = Vec::new();
    let mut pending: Vec<Path<'a>> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let Some((first, rest)) = path.split_first() else { continue };
        if *first == "**" {
            below.push(path);
            if rest.is_empty() {
                whole = true;
            } else {
                pending.push(rest);
            }
        } else if glob_match(first, key) {
            if rest.is_empty() {
                whole = true;
            } else {
                below.push(rest);
            }
        }
    }
    (whole, below)
}

fn include(value: Value, paths: &[Path<'_>]) -> Option<Value> {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                let (whole, below) = step(paths, &key);
                if whole {
                    out.insert(key, child);
                } else if !below.is_empty()
                    && let Some(kept) = include(child, &below)
                {
                    out.insert(key, kept);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items.into_iter().filter_map(|v| include(v, paths)).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        _ => None,
    }
}

fn exclude(value: Value, paths: &[Path<'_>]) -> Option<Value> {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                let (whole, below) = step(paths, &key);
                if whole {
                    continue;
                }
                if below.is_empty() {
                    out.insert(key, child);
                } else if let Some(kept) = exclude(child, &below) {
                    out.insert(key, kept);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(|v| exclude(v, paths)).collect())),
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn logstash_filter() {
        let response = json!({"took":3,"errors":true,"items":[
            {"create":{"_index":"a","_id":"1","status":201,"result":"created"}},
            {"create":{"_index":"a","_id":"2","status":409,"error":{"type":"version_conflict_engine_exception"}}}]});
        assert_eq!(
            filter_path(response.clone(), "errors,items.*.error,items.*.status"),
            json!({"errors":true,"items":[{"create":{"status":201}},
                {"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}}]})
        );
        assert_eq!(
            filter_path(response.clone(), "items.*.error"),
            json!({"items":[{"create":{"error":{"type":"version_conflict_engine_exception"}}}]})
        );
        assert_eq!(filter_path(response.clone(), "nothing"), json!({}));
        assert_eq!(
            filter_path(response.clone(), "**.type"),
            json!({"items":[{"create":{"error":{"type":"version_conflict_engine_exception"}}}]})
        );
        assert_eq!(filter_path(json!({"a":1,"b":{"c":2,"d":3}}), "-b.c"), json!({"a":1,"b":{"d":3}}));
    }
}
