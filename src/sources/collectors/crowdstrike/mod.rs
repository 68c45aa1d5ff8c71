//! CrowdStrike Falcon: hosts, Zero Trust assessments and Spotlight vulnerabilities, as the
//! original data collector gathered them (through the vendor's Python SDK), plus the hosts
//! beyond the 10,000th that its offset paging could not reach.

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "crowdstrike",
    title: "CrowdStrike Falcon",
    link: "https://developer.crowdstrike.com/",
    definition: include_str!("definition.yml"),
    params: &[
        Param { name: "client_id", env: "FALCON_CLIENT_ID", default: None, secret: false, url: false, help: "API client id" },
        Param { name: "client_secret", env: "FALCON_SECRET", default: None, secret: true, url: false, help: "API client secret" },
        Param {
            name: "base_url",
            env: "FALCON_BASE_URL",
            default: Some("https://api.crowdstrike.com"),
            secret: false,
            url: true,
            help: "the cloud's API URL: https://api.us-2.crowdstrike.com, https://api.eu-1.crowdstrike.com …",
        },
        Param { name: "member_cid", env: "FALCON_MEMBER_CID", default: Some(""), secret: false, url: false, help: "an MSSP child CID" },
    ],
};

#[derive(Debug)]
pub struct CrowdStrike;

impl Vendor for CrowdStrike {
    const SPEC: &'static Spec = &SPEC;
}
