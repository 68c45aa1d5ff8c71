//! Okta: the users of the organization, with the members and names the original data collector
//! wrote (the Python SDK's snake_case).

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "okta",
    title: "Okta",
    link: "https://developer.okta.com/docs/reference/api/users/",
    definition: include_str!("definition.yml"),
    params: &[
        Param { name: "domain", env: "OKTA_DOMAIN", default: None, secret: false, url: true, help: "the org URL, https://acme.okta.com" },
        Param { name: "token", env: "OKTA_TOKEN", default: None, secret: true, url: false, help: "an API token (SSWS)" },
    ],
};

#[derive(Debug)]
pub struct Okta;

impl Vendor for Okta {
    const SPEC: &'static Spec = &SPEC;
}
