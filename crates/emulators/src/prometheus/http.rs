//! The active alerts and the API's envelopes.

use std::collections::BTreeMap;

use axum::http::Method;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::Options;
use crate::vendor::{Api, Fault, Reply, Request};

struct Alert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    state: String,
    active_at: DateTime<Utc>,
}

pub struct State {
    options: Options,
    alerts: Vec<Alert>,
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn api_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(status, &json!({"status": "error", "errorType": kind, "error": message}))
}

impl State {
    pub fn new(options: Options) -> State {
        State { options, alerts: Vec::new() }
    }

    pub fn fire(&mut self, labels: &[(&str, &str)], annotations: &[(&str, &str)], state: &str, active_at: DateTime<Utc>) {
        assert!(state == "firing" || state == "pending", "alerts are firing or pending, not {state}");
        let labels = map(labels);
        self.alerts.retain(|a| a.labels != labels);
        self.alerts.push(Alert { labels, annotations: map(annotations), state: state.to_string(), active_at });
    }

    pub fn resolve(&mut self, labels: &[(&str, &str)]) -> usize {
        let before = self.alerts.len();
        self.alerts.retain(|a| !labels.iter().all(|(k, v)| a.labels.get(*k).map(String::as_str) == Some(*v)));
        before - self.alerts.len()
    }
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        req.basic().map(|(user, _)| user)
    }

    fn answer(&mut self, req: &Request, _credential: Option<&str>) -> Reply {
        if let Some((user, password)) = &self.options.basic_auth
            && req.basic().is_none_or(|(u, p)| (&u, &p) != (user, password))
        {
            return Reply::raw(401, "text/plain; charset=utf-8", "Unauthorized\n".into()).header("www-authenticate", "Basic");
        }
        match (req.method.clone(), req.path.as_str()) {
            (Method::GET | Method::POST, "/api/v1/alerts") => {
                let alerts: Vec<_> = self
                    .alerts
                    .iter()
                    .map(|a| {
                        json!({
                            "labels": a.labels,
                            "annotations": a.annotations,
                            "state": a.state,
                            "activeAt": a.active_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
                            "value": "1e+00",
                        })
                    })
                    .collect();
                Reply::json(200, &json!({"status": "success", "data": {"alerts": alerts}}))
            }
            (Method::GET, "/-/healthy") => Reply::raw(200, "text/plain; charset=utf-8", "Prometheus Server is Healthy.\n".into()),
            (Method::GET, "/-/ready") => Reply::raw(200, "text/plain; charset=utf-8", "Prometheus Server is Ready.\n".into()),
            (_, "/api/v1/alerts") => api_error(405, "bad_data", "method not allowed"),
            _ => Reply::raw(404, "text/plain; charset=utf-8", "404 page not found\n".into()),
        }
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        match fault {
            Fault::Throttle(secs) => {
                Reply::raw(429, "text/plain; charset=utf-8", "Too Many Requests\n".into()).header("retry-after", secs.unwrap_or(1))
            }
            Fault::Status(status) => api_error(status, "internal", "injected failure"),
            Fault::Reset => unreachable!("resets are not answered"),
        }
    }
}
