//! Realistic audit records of each content type, shaped like the Management Activity API schema's
//! examples: Entra sign-ins (failures included), Exchange admin cmdlets, SharePoint file
//! operations, Teams activity (Audit.General) and DLP rule matches.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::vendor::{mix, uuid_of};

/// The content types the API knows.
pub const CONTENT_TYPES: [&str; 5] = ["Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All"];

/// `CreationTime` as the API writes it: UTC, no zone suffix, no fraction.
pub fn creation_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

const TEAMS_OPERATIONS: [&str; 3] = ["TeamCreated", "MemberAdded", "ChannelAdded"];
const USERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

/// Audit record number `n` of `content_type` for the tenant (an organization id), created at `at`.
/// Panics on an unknown content type.
pub fn sample_record(tenant: &str, content_type: &str, n: u64, at: DateTime<Utc>) -> Value {
    let r = mix(n ^ crate::vendor::hash(content_type));
    let user = format!("{}@contoso.onmicrosoft.com", USERS[(r % 6) as usize]);
    let ip = format!("203.0.{}.{}", (r >> 8) as u8, (r >> 16) as u8 | 1);
    let id = uuid_of(crate::vendor::hash(tenant) ^ crate::vendor::hash(content_type), n);
    let mut record = json!({
        "CreationTime": creation_time(at),
        "Id": id,
        "OrganizationId": tenant,
        "UserKey": format!("1003{:012X}", r >> 16 & 0xffff_ffff_ffff),
        "UserType": 0,
        "Version": 1,
        "UserId": user,
        "ClientIP": ip,
    });
    let extra = match content_type {
        "Audit.AzureActiveDirectory" => {
            let failed = r.is_multiple_of(4);
            let mut sign_in = json!({
                "RecordType": 15,
                "Workload": "AzureActiveDirectory",
                "Operation": if failed { "UserLoginFailed" } else { "UserLoggedIn" },
                "ResultStatus": if failed { "Failed" } else { "Success" },
                "ObjectId": "00000003-0000-0000-c000-000000000000",
                "AzureActiveDirectoryEventType": 1,
                "ApplicationId": "89bee1f7-5e6e-4d8a-9f3d-ecd601259da7",
                "ActorContextId": tenant,
                "InterSystemsId": uuid_of(r, 1),
                "IntraSystemId": uuid_of(r, 2),
                "TargetContextId": tenant,
                "Actor": [{"ID": uuid_of(r, 3), "Type": 0}, {"ID": user, "Type": 5}],
                "Target": [{"ID": "00000003-0000-0000-c000-000000000000", "Type": 0}],
                "ExtendedProperties": [
                    {"Name": "ResultStatusDetail", "Value": if failed { "Redirect" } else { "Success" }},
                    {"Name": "UserAgent", "Value": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"},
                    {"Name": "RequestType", "Value": "Login:login"},
                ],
                "ModifiedProperties": [],
                "DeviceProperties": [{"Name": "OS", "Value": "Windows 10"}, {"Name": "BrowserType", "Value": "Chrome"}],
            });
            if failed {
                sign_in["ErrorNumber"] = "50126".into();
                sign_in["LogonError"] = "InvalidUserNameOrPassword".into();
            } else {
                sign_in["ErrorNumber"] = "0".into();
            }
            sign_in
        }
        "Audit.Exchange" => {
            let (operation, parameters) = match r % 3 {
                0 => ("New-InboxRule", json!([{"Name": "Name", "Value": "fwd"}, {"Name": "ForwardTo", "Value": "ext@example.net"}])),
                1 => (
                    "Add-MailboxPermission",
                    json!([{"Name": "Identity", "Value": "ceo"}, {"Name": "AccessRights", "Value": "FullAccess"}]),
                ),
                _ => ("Set-Mailbox", json!([{"Name": "Identity", "Value": user}, {"Name": "AuditEnabled", "Value": "False"}])),
            };
            json!({
                "RecordType": 1,
                "Workload": "Exchange",
                "Operation": operation,
                "ResultStatus": "True",
                "ObjectId": format!("EURPR01A001.prod.outlook.com/Microsoft Exchange Hosted Organizations/contoso.onmicrosoft.com/{}", USERS[(r >> 4) as usize % 6]),
                "Parameters": parameters,
                "ExternalAccess": false,
                "OrganizationName": "contoso.onmicrosoft.com",
                "OriginatingServer": "AM0PR01MB0001 (15.20.7544.029)",
            })
        }
        "Audit.SharePoint" => {
            let operation = ["FileAccessed", "FileDownloaded", "FileUploaded", "FileDeleted"][(r % 4) as usize];
            let file = format!("Report-{}.xlsx", r % 1000);
            json!({
                "RecordType": 6,
                "Workload": "SharePoint",
                "Operation": operation,
                "EventSource": "SharePoint",
                "ItemType": "File",
                "ObjectId": format!("https://contoso.sharepoint.com/sites/finance/Shared Documents/{file}"),
                "SiteUrl": "https://contoso.sharepoint.com/sites/finance/",
                "SourceFileExtension": "xlsx",
                "SourceFileName": file,
                "SourceRelativeUrl": "Shared Documents",
                "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Safari/605.1.15",
                "CorrelationId": uuid_of(r, 4),
                "ListId": uuid_of(r, 5),
                "ListItemUniqueId": uuid_of(r, 6),
                "WebId": uuid_of(r, 7),
            })
        }
        "Audit.General" => json!({
            "RecordType": 25,
            "Workload": "MicrosoftTeams",
            "Operation": TEAMS_OPERATIONS[(r % 3) as usize],
            "ObjectId": "Finance",
            "TeamName": "Finance",
            "TeamGuid": format!("19:{}@thread.tacv2", &uuid_of(r, 8).replace('-', "")[..24]),
            "Members": [{"UPN": user, "Role": 1, "DisplayName": USERS[(r % 6) as usize]}],
            "CommunicationType": "Team",
        }),
        "DLP.All" => json!({
            "RecordType": 13,
            "Workload": "Exchange",
            "Operation": "DLPRuleMatch",
            "ObjectId": format!("<{}@AM0PR01MB0001.eurprd01.prod.outlook.com>", uuid_of(r, 9)),
            "IncidentId": uuid_of(r, 10),
            "SensitiveInfoDetectionIsIncluded": true,
            "PolicyDetails": [{
                "PolicyId": uuid_of(7, 1),
                "PolicyName": "U.S. Financial Data",
                "Rules": [{
                    "RuleId": uuid_of(7, 2),
                    "RuleName": "Low volume of content detected U.S. Financial Data",
                    "Severity": if r.is_multiple_of(2) { "Low" } else { "High" },
                    "Actions": ["NotifyUser"],
                    "ConditionsMatched": {"SensitiveInformation": [{"SensitiveType": "cb353f78-2b72-4c3c-8827-92ebe4f69fdf", "SensitiveInformationTypeName": "Credit Card Number", "Count": 1 + r % 5, "Confidence": 85}]},
                }],
            }],
            "ExchangeMetaData": {"From": user, "To": ["someone@example.net"], "Subject": "Q3 numbers", "MessageID": format!("<{}@contoso.com>", uuid_of(r, 11)), "Sent": creation_time(at)},
        }),
        other => panic!("unknown content type {other}"),
    };
    if let (Some(record), Value::Object(extra)) = (record.as_object_mut(), extra) {
        record.extend(extra);
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_content_type_has_records() {
        let at = Utc::now();
        for ct in CONTENT_TYPES {
            let record = sample_record("t", ct, 3, at);
            assert!(record["Operation"].is_string() && record["RecordType"].is_u64(), "{ct}");
            assert_eq!(record["CreationTime"], creation_time(at));
        }
        let failures = (0..40).filter(|&n| sample_record("t", CONTENT_TYPES[0], n, at)["ResultStatus"] == "Failed").count();
        assert!(failures > 0 && failures < 40);
    }
}
