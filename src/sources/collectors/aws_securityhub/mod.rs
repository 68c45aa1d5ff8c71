//! AWS Security Hub findings (GetFindings), incremental by UpdatedAt, signed with SigV4; one source per account and region.

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "aws_securityhub",
    title: "AWS Security Hub findings (GetFindings), incremental by UpdatedAt, signed with SigV4; one source per account and region",
    link: "https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_GetFindings.html",
    definition: include_str!("definition.yml"),
    params: &[
        Param { name: "region", env: "AWS_REGION", default: None, secret: false, url: false, help: "the region, us-east-1 …" },
        Param { name: "access_key_id", env: "AWS_ACCESS_KEY_ID", default: None, secret: false, url: false, help: "an access key id" },
        Param { name: "secret_access_key", env: "AWS_SECRET_ACCESS_KEY", default: None, secret: true, url: false, help: "its secret" },
        Param {
            name: "session_token",
            env: "AWS_SESSION_TOKEN",
            default: Some(""),
            secret: true,
            url: false,
            help: "a session token of temporary credentials",
        },
        Param {
            name: "endpoint",
            env: "AWS_ENDPOINT_URL_SECURITYHUB",
            default: Some("https://securityhub.${region}.amazonaws.com"),
            secret: false,
            url: true,
            help: "the endpoint",
        },
    ],
};

#[derive(Debug)]
pub struct AwsSecurityHub;

impl Vendor for AwsSecurityHub {
    const SPEC: &'static Spec = &SPEC;
}
