//! Walking one data set: requests, pages, `for_each` parents, `expand` requests and export jobs,
//! handing records to an [`Output`] one page at a time. Nothing here holds more than a page.

use std::collections::BTreeSet;

use anyhow::{Context, anyhow, bail};
use chrono::Utc;
use futures::future::BoxFuture;
use reqwest::{Method, Url};
use serde_json::Value;

use super::client::{Answer, Client, Outgoing};
use super::config::{DataSet, Export, Paging, QueryValue, Request};
use super::template::{Rendered, Vars, render_body};

/// Whether the walk goes on after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Where a walk's records go: a snapshot's spool, a stream's sinks, the terminal.
pub trait Output: Send {
    /// One page of records, in the API's order, and the URL of the page after it when the
    /// paging has URLs. A stream returns once they are durable.
    fn page<'a>(&'a mut self, records: Vec<Value>, next: Option<&'a Url>) -> BoxFuture<'a, anyhow::Result<Flow>>;
}

/// Walks `ds` once: every parent, every page, every chunk. Returns the records handed over.
/// `resume` is a next-page URL saved by an earlier run, requested first as it is.
pub async fn walk(
    client: &mut Client,
    ds: &DataSet,
    cursor: Option<&str>,
    resume: Option<Url>,
    out: &mut dyn Output,
) -> anyhow::Result<u64> {
    let now = Utc::now();
    let mut total = 0;
    match &ds.for_each {
        None => {
            let vars = Vars { cursor, now: Some(now), ..Vars::default() };
            walk_one(client, ds, &vars, resume, out, &mut total).await?;
        }
        Some(listing) => {
            // Parents are few (organizations, accounts): they are listed first, whole.
            let vars = Vars { now: Some(now), ..Vars::default() };
            let mut parents = Vec::new();
            let mut pager = Pager::new(&listing.request, &listing.records, &listing.paging);
            while let Some(page) = pager.next(client, &vars).await? {
                parents.extend(page);
            }
            for parent in &parents {
                let vars = Vars { cursor, parent: Some(parent), now: Some(now), ..Vars::default() };
                if walk_one(client, ds, &vars, None, out, &mut total).await? == Flow::Stop {
                    break;
                }
            }
        }
    }
    Ok(total)
}

async fn walk_one(
    client: &mut Client,
    ds: &DataSet,
    vars: &Vars<'_>,
    resume: Option<Url>,
    out: &mut dyn Output,
    total: &mut u64,
) -> anyhow::Result<Flow> {
    if let Some(export) = &ds.export {
        return run_export(client, ds, export, vars, out, total).await;
    }
    let request = ds.request.as_ref().expect("checked at load: a data set without export has a request");
    let mut pager = Pager::new(request, &ds.records, &ds.paging);
    pager.error = ds.error.as_deref();
    if let Some(url) = resume {
        pager.next = Some(Next::Url(url));
    }
    while let Some(page) = pager.next(client, vars).await? {
        if page.is_empty() {
            continue;
        }
        let records = match &ds.expand {
            None => page,
            Some(expand) => {
                let ids: Vec<String> = page.iter().map(id_text).collect();
                let vars = Vars { ids: Some(&ids), ..vars.clone() };
                let mut answer = client.send(&outgoing(client, &expand.request, &vars, &[])?, &[]).await?;
                records_at(&mut answer.body, &expand.records)?
            }
        };
        let next = match &pager.next {
            Some(Next::Url(url)) => Some(url.clone()),
            _ => None,
        };
        if hand_over(ds, records, next.as_ref(), out, total).await? == Flow::Stop {
            return Ok(Flow::Stop);
        }
    }
    Ok(Flow::Continue)
}

async fn hand_over(ds: &DataSet, records: Vec<Value>, next: Option<&Url>, out: &mut dyn Output, total: &mut u64) -> anyhow::Result<Flow> {
    let records: Vec<Value> = match &ds.fields {
        Some(fields) => records.iter().map(|r| project(fields, r)).collect(),
        None => records,
    };
    *total += records.len() as u64;
    out.page(records, next).await
}

/// `{name: /pointer}` applied to a record; a missing member becomes `null`, as the original
/// collectors' SDK objects gave `None`.
pub fn project(fields: &Value, record: &Value) -> Value {
    match fields {
        Value::String(pointer) => record.pointer(pointer).cloned().unwrap_or(Value::Null),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), project(v, record))).collect()),
        _ => Value::Null,
    }
}

/// An export job: start it (or adopt the one already running), poll its status and download
/// each chunk as soon as it is listed, until the job is finished.
async fn run_export(
    client: &mut Client,
    ds: &DataSet,
    export: &Export,
    vars: &Vars<'_>,
    out: &mut dyn Output,
    total: &mut u64,
) -> anyhow::Result<Flow> {
    let started = client.send(&outgoing(client, &export.start, vars, &[])?, &[409]).await?;
    let job = match (started.status.as_u16(), &export.conflict_job_id) {
        (409, Some(pointer)) => text_at(&started.body, pointer).ok_or_else(|| anyhow!("409 without the running job's id at {pointer}"))?,
        (409, None) => bail!("the export was refused with 409: {}", started.body),
        _ => text_at(&started.body, &export.job_id).ok_or_else(|| anyhow!("the export's answer has no job id at {}", export.job_id))?,
    };
    tracing::info!(tag = %ds.tag, job, "export job started");
    let deadline = tokio::time::Instant::now() + export.timeout;
    let mut fetched: BTreeSet<String> = BTreeSet::new();
    loop {
        let job_vars = Vars { job: Some(&job), ..vars.clone() };
        let status = client.send(&outgoing(client, &export.status, &job_vars, &[])?, &[]).await?;
        let state = text_at(&status.body, &export.state).unwrap_or_default();
        if export.failed.contains(&state) {
            bail!("export job {job} ended {state}: {}", status.body);
        }
        let listed: Vec<String> = match status.body.pointer(&export.chunks) {
            Some(Value::Array(ids)) => ids.iter().map(id_text).collect(),
            _ => Vec::new(),
        };
        let new: Vec<String> = listed.into_iter().filter(|c| !fetched.contains(c)).collect();
        for chunk in &new {
            let chunk_vars = Vars { job: Some(&job), chunk: Some(chunk), ..vars.clone() };
            let mut answer = client.send(&outgoing(client, &export.chunk, &chunk_vars, &[])?, &[]).await?;
            let records = records_at(&mut answer.body, &ds.records).with_context(|| format!("chunk {chunk} of export job {job}"))?;
            fetched.insert(chunk.clone());
            if !records.is_empty() && hand_over(ds, records, None, out, total).await? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        // Chunks listed by a finished job are all there are.
        if export.finished.contains(&state) {
            tracing::info!(tag = %ds.tag, job, chunks = fetched.len(), "export job finished");
            return Ok(Flow::Continue);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("export job {job} not finished after {:?} (state {state})", export.timeout);
        }
        if new.is_empty() {
            client.sleep(export.poll_interval).await?;
        }
    }
}

/// Follows one listing's pages.
struct Pager<'a> {
    request: &'a Request,
    records: &'a str,
    paging: &'a Paging,
    /// Where the API reports an error in a successful answer.
    error: Option<&'a str>,
    next: Option<Next>,
    done: bool,
}

/// Where the next page is.
enum Next {
    Offset(u64),
    Page(u64),
    Token(String),
    Url(Url),
}

impl<'a> Pager<'a> {
    fn new(request: &'a Request, records: &'a str, paging: &'a Paging) -> Self {
        let next = match paging {
            Paging::Offset { start, .. } => Some(Next::Offset(*start)),
            Paging::Page { start, .. } => Some(Next::Page(*start)),
            _ => None,
        };
        Pager { request, records, paging, error: None, next, done: false }
    }

    /// The next page's records; `None` after the last page.
    async fn next(&mut self, client: &mut Client, vars: &Vars<'_>) -> anyhow::Result<Option<Vec<Value>>> {
        if self.done {
            return Ok(None);
        }
        let request = match (&self.next, self.paging) {
            (Some(Next::Url(url)), _) => Outgoing { method: Method::GET, url: url.clone(), headers: Vec::new(), body: None },
            (Some(Next::Offset(n)), Paging::Offset { param, .. }) | (Some(Next::Page(n)), Paging::Page { param, .. }) => {
                outgoing(client, self.request, vars, &[(param.as_str(), n.to_string())])?
            }
            (Some(Next::Token(token)), Paging::Cursor { param, in_body: false, .. }) => {
                outgoing(client, self.request, vars, &[(param.as_str(), token.clone())])?
            }
            (Some(Next::Token(token)), Paging::Cursor { param, in_body: true, .. }) => {
                let mut request = outgoing(client, self.request, vars, &[])?;
                let body = request.body.get_or_insert_with(|| Value::Object(Default::default()));
                body.as_object_mut()
                    .ok_or_else(|| anyhow!("paging.in_body needs a JSON object body"))?
                    .insert(param.clone(), token.clone().into());
                request
            }
            _ => outgoing(client, self.request, vars, &[])?,
        };
        let mut answer = client.send(&request, &[]).await?;
        if let Some(error) = self.error.and_then(|p| answer.body.pointer(p)).filter(|e| !e.is_null()) {
            bail!("{} answered an error: {error}", crate::settings::redact_urls(request.url.as_str()));
        }
        // Paging reads other members of the answer (meta, links), never the records.
        let records = records_at(&mut answer.body, self.records)
            .with_context(|| format!("answer of {}", crate::settings::redact_urls(request.url.as_str())))?;
        self.advance(client, &answer, &request.url, records.len())?;
        Ok(Some(records))
    }

    fn advance(&mut self, client: &Client, answer: &Answer, current: &Url, count: usize) -> anyhow::Result<()> {
        let next = match self.paging {
            Paging::None => None,
            _ if count == 0 => None,
            Paging::Offset { next, total, .. } => {
                let Some(Next::Offset(at)) = self.next else { unreachable!("offset paging starts at an offset") };
                let following = next.as_ref().and_then(|p| number_at(&answer.body, p)).unwrap_or(at + count as u64);
                let total = total.as_ref().and_then(|p| number_at(&answer.body, p));
                // A server that does not move forward would page forever.
                (following > at && total.is_none_or(|t| following < t)).then_some(Next::Offset(following))
            }
            Paging::Page { .. } => {
                let Some(Next::Page(n)) = self.next else { unreachable!("page paging starts at a page") };
                Some(Next::Page(n + 1))
            }
            Paging::Cursor { pointer, .. } => {
                let token = text_at(&answer.body, pointer).filter(|t| !t.is_empty());
                let same = matches!((&self.next, &token), (Some(Next::Token(old)), Some(new)) if old == new);
                token.filter(|_| !same).map(Next::Token)
            }
            Paging::NextUrl { pointer } => match text_at(&answer.body, pointer).filter(|t| !t.is_empty()) {
                Some(link) => Some(Next::Url(client.url(&link)?)).filter(|n| !matches!(n, Next::Url(u) if u == current)),
                None => None,
            },
            Paging::LinkHeader => match next_link(&answer.headers) {
                Some(link) => Some(Next::Url(client.url(&link)?)).filter(|n| !matches!(n, Next::Url(u) if u == current)),
                None => None,
            },
        };
        self.done = next.is_none();
        self.next = next;
        Ok(())
    }
}

/// Renders a request. `extra` query parameters replace same-named ones of the template.
pub fn outgoing(client: &Client, request: &Request, vars: &Vars, extra: &[(&str, String)]) -> anyhow::Result<Outgoing> {
    let path = request.path.render_text(vars).map_err(|e| anyhow!("path: {e}"))?;
    let mut url = client.url(&path)?;
    let mut pairs: Vec<(String, String)> =
        url.query_pairs().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)).map(|(k, v)| (k.into(), v.into())).collect();
    for (key, value) in &request.query {
        if extra.iter().any(|(e, _)| e == key) {
            continue;
        }
        let templates: Vec<_> = match value {
            QueryValue::One(t) => vec![t],
            QueryValue::Many(ts) => ts.iter().collect(),
        };
        for t in templates {
            match t.render(vars).map_err(|e| anyhow!("query {key}: {e}"))? {
                Rendered::Text(v) => pairs.push((key.clone(), v)),
                Rendered::List(vs) => pairs.extend(vs.into_iter().map(|v| (key.clone(), v))),
            }
        }
    }
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let headers = request
        .headers
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.render_text(vars).map_err(|e| anyhow!("header {k}: {e}"))?)))
        .collect::<anyhow::Result<_>>()?;
    let body = request.body.as_ref().map(|b| render_body(b, vars)).transpose().map_err(|e| anyhow!("body: {e}"))?;
    let method = Method::from_bytes(request.method.as_bytes()).context("method")?;
    Ok(Outgoing { method, url, headers, body })
}

/// Takes the records out of an answer: the array at `pointer` (the body itself when empty),
/// moved, not copied. `null` or a missing member is an empty page.
pub fn records_at(body: &mut Value, pointer: &str) -> anyhow::Result<Vec<Value>> {
    match body.pointer_mut(pointer) {
        Some(Value::Array(items)) => Ok(std::mem::take(items)),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(other) => bail!("the records at `{pointer}` are not a list: {}", preview(other)),
    }
}

fn preview(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 200 { format!("{}…", &text[..text.floor_char_boundary(200)]) } else { text }
}

fn text_at(body: &Value, pointer: &str) -> Option<String> {
    match body.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number_at(body: &Value, pointer: &str) -> Option<u64> {
    match body.pointer(pointer)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `rel="next"` target of the `Link` headers (RFC 8288), there may be several headers.
pub fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers.get_all(reqwest::header::LINK).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_reads_rel_next_among_several_links() {
        let mut h = reqwest::header::HeaderMap::new();
        h.append("link", "<https://x.okta.com/api/v1/users?limit=200>; rel=\"self\"".parse().unwrap());
        h.append("link", "<https://x.okta.com/api/v1/users?after=00u1&limit=200>; rel=\"next\"".parse().unwrap());
        assert_eq!(next_link(&h).as_deref(), Some("https://x.okta.com/api/v1/users?after=00u1&limit=200"));
        let mut one = reqwest::header::HeaderMap::new();
        one.insert("link", "<https://a/b?page=2>; rel=\"next\", <https://a/b?page=9>; rel=\"last\"".parse().unwrap());
        assert_eq!(next_link(&one).as_deref(), Some("https://a/b?page=2"));
        assert_eq!(next_link(&reqwest::header::HeaderMap::new()), None);
    }

    #[test]
    fn fields_pick_and_rename_members() {
        let fields = serde_json::json!({"id": "/id", "profile": {"first_name": "/profile/firstName", "zip": "/profile/zipCode"}});
        let record = serde_json::json!({"id": "00u1", "profile": {"firstName": "Alice"}, "other": 1});
        assert_eq!(project(&fields, &record), serde_json::json!({"id": "00u1", "profile": {"first_name": "Alice", "zip": null}}));
    }

    #[test]
    fn records_are_found_at_their_pointer() {
        let mut body = serde_json::json!({"resources": [1, 2], "meta": {}});
        assert_eq!(records_at(&mut body, "/resources").unwrap().len(), 2);
        assert!(records_at(&mut body, "/missing").unwrap().is_empty());
        assert!(records_at(&mut body, "/meta").unwrap_err().to_string().contains("not a list"));
        assert_eq!(records_at(&mut serde_json::json!([1]), "").unwrap().len(), 1);
    }
}
