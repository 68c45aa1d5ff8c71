//! The AWS Security Hub emulator over HTTP, as a SigV4-signing GetFindings client sees it.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use sluice_emulators::securityhub::{Emulator, Options};

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const ACCOUNT: &str = "111111111111";

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

fn authorization(key: &str, region: &str, service: &str) -> String {
    let date = Utc::now().format("%Y%m%d");
    format!(
        "AWS4-HMAC-SHA256 Credential={key}/{date}/{region}/{service}/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={}",
        "0123456789abcdef".repeat(4)
    )
}

async fn send(emulator: &Emulator, auth: Option<String>, amz_date: bool, body: &Value) -> Answer {
    let mut request = reqwest::Client::new().post(format!("{}/findings", emulator.url())).json(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if amz_date {
        request = request.header("x-amz-date", Utc::now().format("%Y%m%dT%H%M%SZ").to_string());
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    Answer { status, headers, body: response.json().await.unwrap() }
}

async fn find(emulator: &Emulator, region: &str, body: &Value) -> Answer {
    send(emulator, Some(authorization(KEY, region, "securityhub")), true, body).await
}

async fn hub(options: Options) -> Emulator {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
    emulator.add_key(KEY);
    emulator
}

fn updated(finding: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(finding["UpdatedAt"].as_str().unwrap()).unwrap().to_utc()
}

#[tokio::test]
async fn pages_to_the_end_in_order_without_duplicates() {
    let hub = hub(Options::default()).await;
    let start = Utc::now() - TimeDelta::hours(5);
    hub.generate_findings("us-east-1", ACCOUNT, 250, start, start + TimeDelta::hours(4));
    hub.generate_findings("eu-west-1", ACCOUNT, 10, start, start + TimeDelta::hours(4));
    let mut body = json!({"SortCriteria": [{"Field": "UpdatedAt", "SortOrder": "asc"}], "MaxResults": 100});
    let (mut ids, mut pages, mut last) = (HashSet::new(), 0, None);
    loop {
        let page = find(&hub, "us-east-1", &body).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.headers.contains_key("x-amzn-requestid"));
        pages += 1;
        for finding in page.body["Findings"].as_array().unwrap() {
            assert!(ids.insert(finding["Id"].as_str().unwrap().to_string()));
            assert_eq!(finding["SchemaVersion"], "2018-10-08");
            assert!(last.is_none_or(|l| l <= updated(finding)), "ascending UpdatedAt");
            last = Some(updated(finding));
        }
        match page.body.get("NextToken") {
            Some(token) => body["NextToken"] = token.clone(),
            None => break,
        }
    }
    assert_eq!((ids.len(), pages), (250, 3));
    let eu = find(&hub, "eu-west-1", &json!({})).await;
    assert_eq!(eu.body["Findings"].as_array().unwrap().len(), 10, "data is per region");
    let off = find(&hub, "ap-south-1", &json!({})).await;
    assert_eq!((off.status, off.headers["x-amzn-errortype"].to_str().unwrap()), (401, "InvalidAccessException"));
}

#[tokio::test]
async fn filters_are_honoured() {
    let hub = hub(Options::default()).await;
    let start = Utc::now() - TimeDelta::hours(5);
    hub.generate_findings("us-east-1", ACCOUNT, 200, start, start + TimeDelta::hours(4));
    let all = hub.findings("us-east-1");
    let pivot = updated(&all[120]);
    let body = json!({
        "Filters": {
            "UpdatedAt": [{"Start": pivot.to_rfc3339(), "End": Utc::now().to_rfc3339()}],
            "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
            "SeverityLabel": [{"Value": "CRITICAL", "Comparison": "EQUALS"}, {"Value": "HIGH", "Comparison": "EQUALS"}],
        },
        "SortCriteria": [{"Field": "UpdatedAt", "SortOrder": "desc"}],
        "MaxResults": 100,
    });
    let page = find(&hub, "us-east-1", &body).await;
    let found = page.body["Findings"].as_array().unwrap();
    let expected = all
        .iter()
        .filter(|f| {
            updated(f) >= pivot && f["RecordState"] == "ACTIVE" && ["CRITICAL", "HIGH"].contains(&f["Severity"]["Label"].as_str().unwrap())
        })
        .count();
    assert!(expected > 0);
    assert_eq!(found.len(), expected);
    assert!(found.windows(2).all(|w| updated(&w[0]) >= updated(&w[1])), "descending");

    let id = all[3]["Id"].as_str().unwrap();
    assert!(hub.update_finding("us-east-1", id, json!({"Workflow": {"Status": "RESOLVED"}, "RecordState": "ACTIVE"})));
    let since = json!({"Filters": {"UpdatedAt": [{"Start": (Utc::now() - TimeDelta::seconds(5)).to_rfc3339()}]}});
    let moved = find(&hub, "us-east-1", &since).await;
    assert_eq!(moved.body["Findings"][0]["Id"], id);
    assert_eq!(moved.body["Findings"][0]["Workflow"]["Status"], "RESOLVED");
}

#[tokio::test]
async fn auth_and_input_errors() {
    let hub = hub(Options { rate_limit_per_minute: 1, enforce_rate_limit: true }).await;
    hub.enable_region("us-east-1");
    let code =
        |a: &Answer| (a.status, a.headers["x-amzn-errortype"].to_str().unwrap().to_string(), a.body["Code"].as_str().unwrap().to_string());
    let missing = send(&hub, None, true, &json!({})).await;
    assert_eq!(code(&missing).0, 403);
    let unknown = send(&hub, Some(authorization("AKIAUNKNOWN", "us-east-1", "securityhub")), true, &json!({})).await;
    assert_eq!(code(&unknown), (403, "UnrecognizedClientException".into(), "UnrecognizedClientException".into()));
    let service = send(&hub, Some(authorization(KEY, "us-east-1", "s3")), true, &json!({})).await;
    assert_eq!(service.status, 403);
    let malformed = send(&hub, Some(format!("AWS4-HMAC-SHA256 Credential={KEY}/us-east-1")), true, &json!({})).await;
    assert_eq!(code(&malformed).1, "IncompleteSignatureException");
    let no_date = send(&hub, Some(authorization(KEY, "us-east-1", "securityhub")), false, &json!({})).await;
    assert_eq!(no_date.status, 403);

    let too_many = find(&hub, "us-east-1", &json!({"MaxResults": 101})).await;
    assert_eq!(code(&too_many), (400, "InvalidInputException".into(), "InvalidInputException".into()));
    let limited = find(&hub, "us-east-1", &json!({})).await;
    assert_eq!(code(&limited), (429, "LimitExceededException".into(), "LimitExceededException".into()));

    let hub = self::hub(Options::default()).await;
    hub.enable_region("us-east-1");
    assert_eq!(find(&hub, "us-east-1", &json!({"MaxResults": 0})).await.status, 400);
    assert_eq!(find(&hub, "us-east-1", &json!({"NextToken": "garbage"})).await.status, 400);
    hub.throttle_next(1);
    assert_eq!(find(&hub, "us-east-1", &json!({})).await.status, 429);
    hub.fail_next(1, 500);
    assert_eq!(find(&hub, "us-east-1", &json!({})).await.body["Code"], "InternalException");
    let empty = find(&hub, "us-east-1", &json!({})).await;
    assert_eq!(empty.body, json!({"Findings": []}));
}
