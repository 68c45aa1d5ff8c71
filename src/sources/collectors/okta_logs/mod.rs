//! Okta System Log as a stream of events: sign-ins, MFA, admin and lifecycle actions.

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "okta_logs",
    title: "Okta System Log",
    link: "https://developer.okta.com/docs/reference/api/system-log/",
    definition: include_str!("definition.yml"),
    params: &[
        Param { name: "domain", env: "OKTA_DOMAIN", default: None, secret: false, url: true, help: "the org URL, https://acme.okta.com" },
        Param { name: "token", env: "OKTA_TOKEN", default: None, secret: true, url: false, help: "an API token (SSWS)" },
    ],
};

#[derive(Debug)]
pub struct OktaLogs;

impl Vendor for OktaLogs {
    const SPEC: &'static Spec = &SPEC;
}
