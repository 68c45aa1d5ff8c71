//! Zabbix problems polled through the JSON-RPC API (problem.get) with an API token.

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "zabbix",
    title: "Zabbix problems polled through the JSON-RPC API (problem.get) with an API token",
    link: "https://www.zabbix.com/documentation/current/en/manual/api/reference/problem/get",
    definition: include_str!("definition.yml"),
    params: &[
        Param {
            name: "url",
            env: "ZABBIX_URL",
            default: None,
            secret: false,
            url: true,
            help: "the Zabbix front end, https://zabbix.example.com",
        },
        Param {
            name: "token",
            env: "ZABBIX_TOKEN",
            default: None,
            secret: true,
            url: false,
            help: "an API token (Zabbix 6.4 or later: sent as a bearer token)",
        },
        Param {
            name: "existing_at_start",
            env: "ZABBIX_EXISTING_AT_START",
            default: Some("deliver"),
            secret: false,
            url: false,
            help: "skip: problems open at the first start are not sent",
        },
    ],
};

#[derive(Debug)]
pub struct Zabbix;

impl Vendor for Zabbix {
    const SPEC: &'static Spec = &SPEC;
}
