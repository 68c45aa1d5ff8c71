//! The Prometheus alerts emulator over HTTP, as a polling connector sees it.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::Value;
use sluice_emulators::prometheus::{Emulator, Options};

async fn alerts(url: &str, auth: Option<(&str, &str)>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{url}/api/v1/alerts"));
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn fire_and_resolve() {
    let prometheus = Emulator::start("127.0.0.1:0".parse().unwrap(), Options::default()).await.unwrap();
    let (status, body) = alerts(&prometheus.url(), None).await;
    assert_eq!((status, body["status"].as_str(), body["data"]["alerts"].as_array().map(Vec::len)), (200, Some("success"), Some(0)));

    let labels = [("alertname", "InstanceDown"), ("severity", "critical"), ("instance", "node-1:9100")];
    prometheus.fire(&labels, &[("summary", "node-1 is down")]);
    let since = Utc::now() - TimeDelta::minutes(3);
    prometheus.fire_at(&[("alertname", "HighCpuLoad"), ("severity", "warning"), ("instance", "[::1]:9100")], &[], "pending", since);
    let (_, body) = alerts(&prometheus.url(), None).await;
    let listed = body["data"]["alerts"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["labels"]["alertname"], "InstanceDown");
    assert_eq!((listed[0]["state"].as_str(), listed[0]["value"].as_str()), (Some("firing"), Some("1e+00")));
    assert_eq!(listed[0]["annotations"]["summary"], "node-1 is down");
    assert_eq!(listed[1]["state"], "pending");
    let active_at = chrono::DateTime::parse_from_rfc3339(listed[1]["activeAt"].as_str().unwrap()).unwrap();
    assert_eq!(active_at, since);

    prometheus.fire(&labels, &[]);
    assert_eq!(alerts(&prometheus.url(), None).await.1["data"]["alerts"].as_array().unwrap().len(), 2, "same labels: one alert");
    assert_eq!(prometheus.resolve(&[("alertname", "InstanceDown")]), 1);
    let (_, body) = alerts(&prometheus.url(), None).await;
    assert_eq!(body["data"]["alerts"][0]["labels"]["alertname"], "HighCpuLoad");
    assert_eq!(body["data"]["alerts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn basic_auth_and_faults() {
    let options = Options { basic_auth: Some(("prom".into(), "pw".into())) };
    let prometheus = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
    assert_eq!(alerts(&prometheus.url(), None).await.0, 401);
    assert_eq!(alerts(&prometheus.url(), Some(("prom", "bad"))).await.0, 401);
    assert_eq!(alerts(&prometheus.url(), Some(("prom", "pw"))).await.0, 200);
    prometheus.fail_next(1, 503);
    let (status, body) = alerts(&prometheus.url(), Some(("prom", "pw"))).await;
    assert_eq!((status, body["status"].as_str()), (503, Some("error")));
    prometheus.throttle_next(1, Duration::from_secs(3));
    assert_eq!(alerts(&prometheus.url(), Some(("prom", "pw"))).await.0, 429);
    prometheus.reset_next(1);
    assert!(reqwest::get(format!("{}/api/v1/alerts", prometheus.url())).await.is_err());
    assert_eq!(prometheus.max_requests_in_any_minute("prom"), 4);
    prometheus.stop().await;
}
