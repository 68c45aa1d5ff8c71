//! The Kismet alerts emulator over HTTP, as the polling connector (Basic auth) and cookie or
//! API-token clients see it.

use std::time::Duration;

use serde_json::Value;
use sluice_emulators::kismet::{Emulator, Options};

async fn kismet(options: Options) -> Emulator {
    Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap()
}

async fn get(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn all_alerts_with_basic_auth_then_the_session_cookie() {
    let kismet = kismet(Options { backlog: 5, ..Options::default() }).await;
    let http = reqwest::Client::new();
    let url = format!("{}/alerts/all_alerts.json", kismet.url());
    let (status, _, _) = get(http.get(&url)).await;
    assert_eq!(status, 401);
    assert_eq!(get(http.get(&url).basic_auth("kismet", Some("wrong"))).await.0, 401);

    let raised = kismet.raise_alert("Rogue AP detected", 12, "probe request flood", "aa:bb:cc:dd:ee:ff");
    let (status, headers, body) = get(http.get(&url).basic_auth("kismet", Some("kismet"))).await;
    assert_eq!(status, 200);
    let alert = &body[0];
    assert_eq!(alert, &raised);
    assert_eq!(alert["kismet.alert.header"], "Rogue AP detected");
    assert_eq!(alert["kismet.alert.severity"], 12);
    assert_eq!(alert["kismet.alert.source_mac"], "aa:bb:cc:dd:ee:ff");
    assert_eq!(alert["kismet.alert.text"], "probe request flood");
    assert!(alert["kismet.alert.timestamp"].as_f64().unwrap() > 1.7e9);

    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("KISMET="));
    assert_eq!(get(http.get(&url).header("cookie", &cookie)).await.0, 200);
    kismet.logout_all();
    assert_eq!(get(http.get(&url).header("cookie", &cookie)).await.0, 401);

    kismet.generate_alerts(8, Duration::from_secs(60));
    let (_, _, body) = get(http.get(&url).basic_auth("kismet", Some("kismet"))).await;
    let listed = body.as_array().unwrap();
    assert_eq!(listed.len(), 5, "only the backlog is kept");
    let times: Vec<f64> = listed.iter().map(|a| a["kismet.alert.timestamp"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
}

#[tokio::test]
async fn last_time_and_api_tokens() {
    let kismet = kismet(Options { api_tokens: vec!["TOKEN1".into()], ..Options::default() }).await;
    kismet.generate_alerts(10, Duration::from_secs(100));
    let http = reqwest::Client::new();
    let all = get(http.get(format!("{}/alerts/all_alerts.json?KISMET=TOKEN1", kismet.url()))).await.2;
    let sixth = all[5]["kismet.alert.timestamp"].as_f64().unwrap();
    let since = format!("{}/alerts/last-time/{sixth}/alerts.json", kismet.url());
    let (status, _, body) = get(http.get(&since).header("cookie", "KISMET=TOKEN1")).await;
    assert_eq!(status, 200);
    assert_eq!(body["kismet.alert.list"].as_array().unwrap().len(), 4);
    assert!(body["kismet.alert.timestamp"].as_f64().unwrap() >= sixth);
    let relative = get(http.get(format!("{}/alerts/last-time/-1000/alerts.json?KISMET=TOKEN1", kismet.url()))).await.2;
    assert_eq!(relative["kismet.alert.list"].as_array().unwrap().len(), 10);
    assert_eq!(get(http.get(format!("{}/alerts/all_alerts.json?KISMET=nope", kismet.url()))).await.0, 401);

    kismet.fail_next(1, 500);
    assert_eq!(get(http.get(format!("{}/alerts/all_alerts.json?KISMET=TOKEN1", kismet.url()))).await.0, 500);
    kismet.reset_next(1);
    assert!(http.get(format!("{}/alerts/all_alerts.json?KISMET=TOKEN1", kismet.url())).send().await.is_err());
    assert_eq!(kismet.max_requests_in_any_minute("TOKEN1"), 5);
}
