//! Microsoft Graph security alerts (Defender XDR alerts_v2), incremental by lastUpdateDateTime; each update of an alert is an event of its own.

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "graph_security",
    title: "Microsoft Graph security alerts (Defender XDR alerts_v2), incremental by lastUpdateDateTime; each update of an alert is an event of its own",
    link: "https://learn.microsoft.com/graph/api/security-list-alerts_v2",
    definition: include_str!("definition.yml"),
    params: &[
        Param {
            name: "tenant_id",
            env: "GRAPH_TENANT_ID",
            default: None,
            secret: false,
            url: false,
            help: "the Entra tenant (directory) id",
        },
        Param {
            name: "client_id",
            env: "GRAPH_CLIENT_ID",
            default: None,
            secret: false,
            url: false,
            help: "the app registration's client id",
        },
        Param { name: "client_secret", env: "GRAPH_CLIENT_SECRET", default: None, secret: true, url: false, help: "its client secret" },
        Param {
            name: "base_url",
            env: "GRAPH_URL",
            default: Some("https://graph.microsoft.com/v1.0"),
            secret: false,
            url: true,
            help: "the Graph root of the cloud",
        },
        Param {
            name: "login_url",
            env: "GRAPH_LOGIN_URL",
            default: Some("https://login.microsoftonline.com"),
            secret: false,
            url: true,
            help: "the Entra token host of the cloud",
        },
        Param {
            name: "scope",
            env: "GRAPH_SCOPE",
            default: Some("https://graph.microsoft.com/.default"),
            secret: false,
            url: false,
            help: "the token scope of the cloud",
        },
    ],
};

#[derive(Debug)]
pub struct GraphSecurity;

impl Vendor for GraphSecurity {
    const SPEC: &'static Spec = &SPEC;
}
