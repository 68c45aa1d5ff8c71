//! The emulator's state and endpoints: tenants with their subscriptions and content blobs, the
//! token endpoints, the `{"error":{"code":"AF…"}}` envelope and per-tenant throttling.

use std::collections::{BTreeMap, HashMap};

use axum::http::Method;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::Options;
use super::records::{CONTENT_TYPES, creation_time};
use crate::entra::{self, Entra};
use crate::vendor::{Api, Fault, Limiter, Reply, Request};

struct Blob {
    content_type: String,
    id: String,
    created: DateTime<Utc>,
    expiration: DateTime<Utc>,
    /// Creation order across the tenant, to break ties in `created`.
    seq: u64,
    expired: bool,
    /// The records as a JSON array text.
    body: String,
}

#[derive(Default)]
pub struct Tenant {
    /// Content type → enabled, for every type ever started.
    subscriptions: BTreeMap<String, bool>,
    blobs: Vec<Blob>,
}

pub struct State {
    options: Options,
    pub base: String,
    pub entra: Entra,
    tenants: HashMap<String, Tenant>,
    limiter: Limiter,
    /// Added to the real time: the emulator's clock, which tests move forward.
    pub offset: TimeDelta,
    seq: u64,
}

fn af(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, &json!({"error": {"code": code, "message": message}}))
}

fn denied() -> Reply {
    Reply::json(401, &json!({"error": {"code": "Unauthorized", "message": "Authorization has been denied for this request."}}))
        .header("www-authenticate", "Bearer")
}

/// The API's accepted time formats: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`, `YYYY-MM-DDTHH:MM:SS`, and
/// what clients commonly send on top (fractions, `Z`, offsets). UTC when no zone is given.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.to_utc());
    }
    let text = text.trim_end_matches('Z');
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
}

fn time_param(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// `nextPage`: the creation time (ms) and sequence number of the page's first blob.
fn next_page(blob: &Blob) -> String {
    format!("{}R{:012}", blob.created.timestamp_millis(), blob.seq)
}

fn parse_next_page(token: &str) -> Option<(i64, u64)> {
    let (ms, seq) = token.split_once('R')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

impl State {
    pub fn new(options: Options) -> State {
        let limiter = Limiter::new(options.rate_limit_per_minute, true);
        let entra = Entra::new("https://manage.office.com", "ActivityFeed.Read", options.token_ttl);
        State { options, base: String::new(), entra, tenants: HashMap::new(), limiter, offset: TimeDelta::zero(), seq: 0 }
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    pub fn tenant(&mut self, tenant: &str) -> &mut Tenant {
        self.tenants.entry(tenant.to_string()).or_default()
    }

    pub fn start_subscription(&mut self, tenant: &str, content_type: &str) {
        self.tenant(tenant).subscriptions.insert(content_type.to_string(), true);
    }

    /// Groups the records into blobs (one per `blob_span` bucket, at most `records_per_blob`
    /// each); a blob's `contentCreated` is its last record's time plus `publication_delay`.
    pub fn add_records(&mut self, tenant: &str, content_type: &str, mut records: Vec<(DateTime<Utc>, Value)>) -> Vec<String> {
        assert!(CONTENT_TYPES.contains(&content_type), "unknown content type {content_type}");
        records.sort_by_key(|(t, _)| *t);
        let span = self.options.blob_span.num_milliseconds().max(1);
        let mut groups: Vec<Vec<(DateTime<Utc>, Value)>> = Vec::new();
        for (at, mut record) in records {
            if let Some(object) = record.as_object_mut() {
                object.entry("CreationTime").or_insert_with(|| creation_time(at).into());
                object.entry("Id").or_insert_with(|| uuid::Uuid::new_v4().to_string().into());
                object.entry("OrganizationId").or_insert_with(|| tenant.into());
            }
            let bucket = at.timestamp_millis().div_euclid(span);
            match groups.last_mut() {
                Some(g) if g.len() < self.options.records_per_blob && g[0].0.timestamp_millis().div_euclid(span) == bucket => {
                    g.push((at, record))
                }
                _ => groups.push(vec![(at, record)]),
            }
        }
        let abbreviation = match content_type {
            "Audit.AzureActiveDirectory" => "aad",
            "Audit.Exchange" => "exo",
            "Audit.SharePoint" => "spo",
            "Audit.General" => "gen",
            _ => "dlp",
        };
        let tenant_hex = tenant.replace('-', "");
        let mut ids = Vec::new();
        for group in groups {
            let created = group.last().map(|(t, _)| *t).unwrap_or_default() + self.options.publication_delay;
            self.seq += 1;
            let ms = created.timestamp_millis();
            let id = format!(
                "{ms}${ms}${tenant_hex}{abbreviation}{}${}${:02}",
                created.format("%Y%m%d%H"),
                uuid::Uuid::new_v4().simple(),
                self.seq % 100
            );
            let body = format!("[{}]", group.iter().map(|(_, r)| r.to_string()).collect::<Vec<_>>().join(","));
            let blob = Blob {
                content_type: content_type.to_string(),
                id: id.clone(),
                created,
                expiration: created + self.options.blob_retention,
                seq: self.seq,
                expired: false,
                body,
            };
            self.tenant(tenant).blobs.push(blob);
            ids.push(id);
        }
        ids
    }

    pub fn expire_blob(&mut self, tenant: &str, content_id: &str) -> bool {
        let Some(blob) = self.tenants.get_mut(tenant).and_then(|t| t.blobs.iter_mut().find(|b| b.id == content_id)) else { return false };
        blob.expired = true;
        true
    }

    fn content_uri(&self, tenant: &str, id: &str) -> String {
        format!("{}/api/v1.0/{tenant}/activity/feed/audit/{id}", self.base)
    }

    fn feed(&mut self, req: &Request, tenant: &str, rest: &str) -> Reply {
        let now = self.now();
        let token_tenant = match self.entra.bearer(req, now) {
            Ok(token) => token.tenant.clone(),
            Err(_) => return denied(),
        };
        if token_tenant != tenant {
            return af(
                401,
                "AF20010",
                &format!(
                    "The tenant ID passed in the URL ({tenant}) does not match the tenant ID passed in the access token ({token_tenant})."
                ),
            );
        }
        let admission = self.limiter.admit(tenant);
        if !admission.allowed {
            return self.throttled("ListContent");
        }
        let post = req.method == Method::POST;
        match rest {
            "subscriptions/start" if post => self.start(req, tenant),
            "subscriptions/stop" if post => self.stop(req, tenant),
            "subscriptions/list" if !post => self.list(tenant),
            "subscriptions/content" if !post => self.content(req, tenant, now),
            _ => match rest.strip_prefix("audit/") {
                Some(id) if !post && !id.is_empty() => self.blob(tenant, id, now),
                _ => af(404, "AF20050", "The specified content does not exist."),
            },
        }
    }

    fn throttled(&self, method: &str) -> Reply {
        af(
            self.options.throttle_status,
            "AF429",
            &format!("Too many requests. Method={method}, PublisherId=00000000-0000-0000-0000-000000000000"),
        )
    }

    fn content_type(req: &Request) -> Result<String, Reply> {
        let Some(ct) = req.param("contentType") else {
            return Err(af(400, "AF20001", "Missing parameter: contentType."));
        };
        match CONTENT_TYPES.iter().find(|c| c.eq_ignore_ascii_case(ct)) {
            Some(ct) => Ok(ct.to_string()),
            None => Err(af(400, "AF20020", &format!("Invalid content type: {ct}."))),
        }
    }

    fn start(&mut self, req: &Request, tenant: &str) -> Reply {
        let ct = match Self::content_type(req) {
            Ok(ct) => ct,
            Err(reply) => return reply,
        };
        let webhook = req.json_body().and_then(|b| b.get("webhook").cloned()).unwrap_or(Value::Null);
        let subscriptions = &mut self.tenant(tenant).subscriptions;
        if subscriptions.get(&ct) == Some(&true) {
            return af(400, "AF20024", "The subscription is already enabled. No property change.");
        }
        subscriptions.insert(ct.clone(), true);
        Reply::json(200, &json!({"contentType": ct, "status": "enabled", "webhook": webhook}))
    }

    fn stop(&mut self, req: &Request, tenant: &str) -> Reply {
        let ct = match Self::content_type(req) {
            Ok(ct) => ct,
            Err(reply) => return reply,
        };
        let subscriptions = &mut self.tenant(tenant).subscriptions;
        if subscriptions.get(&ct) != Some(&true) {
            return af(400, "AF20022", "No subscription found for the specified content type.");
        }
        subscriptions.insert(ct, false);
        Reply::raw(200, "application/json", String::new())
    }

    fn list(&mut self, tenant: &str) -> Reply {
        let list: Vec<Value> = self
            .tenant(tenant)
            .subscriptions
            .iter()
            .map(|(ct, on)| json!({"contentType": ct, "status": if *on { "enabled" } else { "disabled" }, "webhook": null}))
            .collect();
        Reply::json(200, &Value::Array(list))
    }

    /// `subscriptions/content`: blobs with `startTime <= contentCreated < endTime`, oldest first,
    /// `content_page_size` a page, `NextPageUri` while more remain.
    fn content(&mut self, req: &Request, tenant: &str, now: DateTime<Utc>) -> Reply {
        let ct = match Self::content_type(req) {
            Ok(ct) => ct,
            Err(reply) => return reply,
        };
        let window = "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.";
        let (start, end) = match (req.param("startTime"), req.param("endTime")) {
            (None, None) => (now - TimeDelta::hours(24), now),
            (Some(s), Some(e)) => match (parse_time(s), parse_time(e)) {
                (Some(s), Some(e)) => (s, e),
                _ => return af(400, "AF20002", "Invalid parameter type: startTime or endTime. Expected type: datetime."),
            },
            _ => return af(400, "AF20030", window),
        };
        if start < now - TimeDelta::days(7) {
            return af(400, "AF20055", "Start time cannot be more than 7 days in the past.");
        }
        if end <= start || end - start > TimeDelta::hours(24) {
            return af(400, "AF20030", window);
        }
        let from = match req.param("nextPage") {
            None => None,
            Some(token) => match parse_next_page(token) {
                Some(key) => Some(key),
                None => return af(400, "AF20031", "Invalid nextPage Input: nextPage."),
            },
        };
        let subscribed = self.tenant(tenant).subscriptions.get(&ct) == Some(&true);
        if !subscribed {
            return af(400, "AF20022", "No subscription found for the specified content type.");
        }
        let tenant_data = &self.tenants[tenant];
        let mut selected: Vec<&Blob> = tenant_data
            .blobs
            .iter()
            .filter(|b| b.content_type == ct && b.created >= start && b.created < end && b.created <= now)
            .collect();
        selected.sort_by_key(|b| (b.created, b.seq));
        let first = from.map_or(0, |key| selected.partition_point(|b| (b.created.timestamp_millis(), b.seq) < key));
        let size = self.options.content_page_size.max(1);
        let page = &selected[first..(first + size).min(selected.len())];
        let listed: Vec<Value> = page
            .iter()
            .map(|b| {
                json!({
                    "contentType": ct,
                    "contentId": b.id,
                    "contentUri": self.content_uri(tenant, &b.id),
                    "contentCreated": b.created.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                    "contentExpiration": b.expiration.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                })
            })
            .collect();
        let mut reply = Reply::json(200, &Value::Array(listed));
        if let Some(next) = selected.get(first + size) {
            // Times with literal colons, as the service writes them; every value is URL-safe.
            let mut query =
                format!("contentType={ct}&startTime={}&endTime={}&nextPage={}", time_param(start), time_param(end), next_page(next));
            if let Some(publisher) = req.param("PublisherIdentifier") {
                query.push_str("&PublisherIdentifier=");
                query.extend(form_urlencoded::byte_serialize(publisher.as_bytes()));
            }
            reply.set("nextpageuri", format!("{}/api/v1.0/{tenant}/activity/feed/subscriptions/content?{query}", self.base));
        }
        reply
    }

    fn blob(&self, tenant: &str, id: &str, now: DateTime<Utc>) -> Reply {
        let Some(blob) = self.tenants.get(tenant).and_then(|t| t.blobs.iter().find(|b| b.id == id)) else {
            if !id.contains('$') {
                return af(400, "AF20052", "Content ID in the URL is invalid.");
            }
            return af(400, "AF20050", "The specified content does not exist.");
        };
        if blob.expired || blob.expiration <= now {
            return af(
                400,
                "AF20051",
                "Content requested with the key has already expired. Content older than 7 days cannot be retrieved.",
            );
        }
        Reply::raw(200, "application/json", blob.body.clone())
    }
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        self.entra.credential(req)
    }

    fn answer(&mut self, req: &Request, _credential: Option<&str>) -> Reply {
        if let Some((tenant, v2)) = entra::token_path(&req.path) {
            if req.method != Method::POST {
                return af(405, "AF20000", "Method not allowed.");
            }
            let tenant = tenant.to_string();
            let now = self.now();
            return self.entra.issue(req, &tenant, v2, now);
        }
        let path = req.path.strip_prefix("/api/v1.0/").or_else(|| req.path.strip_prefix("/api/v1/"));
        let Some((tenant, rest)) = path.and_then(|p| p.split_once("/activity/feed/")) else {
            return af(404, "AF20050", "The specified content does not exist.");
        };
        let (tenant, rest) = (tenant.to_string(), rest.to_string());
        if !self.tenants.contains_key(&tenant) {
            if uuid::Uuid::parse_str(&tenant).is_err() {
                return af(400, "AF20013", &format!("The tenant ID passed in the URL ({tenant}) is not a valid GUID."));
            }
            return af(400, "AF20011", &format!("Specified tenant ID ({tenant}) does not exist in the system or has been deleted."));
        }
        self.feed(req, &tenant, &rest)
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        match fault {
            Fault::Throttle(_) => self.throttled("ListContent"),
            Fault::Status(status) => af(status, "AF50000", "An internal error occurred. Retry the request."),
            Fault::Reset => unreachable!("resets are not answered"),
        }
    }

    fn finish(&mut self, _credential: Option<&str>, reply: &mut Reply) {
        reply.set("request-id", uuid::Uuid::new_v4());
    }
}
