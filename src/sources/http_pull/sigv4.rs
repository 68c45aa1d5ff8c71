//! AWS Signature Version 4 for `auth: {type: sigv4}`, through AWS's own signer crate.

use std::time::SystemTime;

use anyhow::Context;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign as sign_request};
use aws_sigv4::sign::v4;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};

pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
}

/// The headers that sign this request (`authorization`, `x-amz-date`, and the session token
/// when there is one).
pub fn sign(
    credentials: &Credentials,
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    body: &[u8],
    at: SystemTime,
) -> anyhow::Result<Vec<(String, String)>> {
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id,
        credentials.secret_access_key,
        credentials.session_token.map(str::to_string),
        None,
        "sluice-config",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(credentials.region)
        .name(credentials.service)
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .context("SigV4 signing parameters")?
        .into();
    let pairs: Vec<(&str, &str)> = headers.iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))).collect();
    let signable = SignableRequest::new(method.as_str(), url.as_str(), pairs.into_iter(), SignableBody::Bytes(body))
        .context("the request cannot be signed")?;
    let (instructions, _) = sign_request(signable, &params).context("SigV4 signing")?.into_parts();
    Ok(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example (the IAM `ListUsers` request of the SigV4 documentation's
    /// "get-vanilla" style): same inputs give the same signature on every run.
    #[test]
    fn signs_deterministically_with_the_documented_scope() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
            region: "us-east-1",
            service: "securityhub",
        };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
        let url = Url::parse("https://securityhub.us-east-1.amazonaws.com/findings").unwrap();
        let a = sign(&creds, &Method::POST, &url, &HeaderMap::new(), b"{}", at).unwrap();
        let b = sign(&creds, &Method::POST, &url, &HeaderMap::new(), b"{}", at).unwrap();
        assert_eq!(a, b);
        let auth = &a.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/securityhub/aws4_request"), "{auth}");
        assert!(a.iter().any(|(k, v)| k == "x-amz-date" && v == "20150830T123600Z"));
    }
}
