//! Realistic ASFF findings (Security Hub controls and GuardDuty), and the GetFindings filters.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::vendor::{mix, uuid_of};

pub fn asff_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn time_of(finding: &Value, field: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(finding.get(field)?.as_str()?).ok().map(|t| t.to_utc())
}

const CONTROLS: [(&str, &str, &str, &str); 5] = [
    ("Config.1", "AWS Config should be enabled and use the service-linked role for resource recording", "MEDIUM", "AwsAccount"),
    ("S3.8", "S3 general purpose buckets should block public access", "HIGH", "AwsS3Bucket"),
    ("IAM.6", "Hardware MFA should be enabled for the root user", "CRITICAL", "AwsAccount"),
    ("EC2.19", "Security groups should not allow unrestricted access to ports with high risk", "CRITICAL", "AwsEc2SecurityGroup"),
    ("CloudTrail.1", "CloudTrail should be enabled and configured with at least one multi-Region trail", "HIGH", "AwsAccount"),
];

fn normalized(label: &str) -> u64 {
    match label {
        "INFORMATIONAL" => 0,
        "LOW" => 1,
        "MEDIUM" => 40,
        "HIGH" => 70,
        _ => 90,
    }
}

/// Finding number `n` of `account` in `region`, last updated at `updated`: mostly Security Hub
/// control findings, every fifth a GuardDuty one.
pub fn sample_finding(region: &str, account: &str, n: u64, updated: DateTime<Utc>) -> Value {
    let r = mix(n ^ crate::vendor::hash(region) ^ crate::vendor::hash(account));
    let created = updated - TimeDelta::hours(1 + (r % 240) as i64);
    let workflow = ["NEW", "NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"][(r >> 8) as usize % 5];
    let record_state = if r >> 12 & 7 == 0 { "ARCHIVED" } else { "ACTIVE" };
    if n % 5 == 4 {
        let label = ["LOW", "MEDIUM", "HIGH"][(r >> 16) as usize % 3];
        let detector = format!("{:032x}", u128::from(mix(crate::vendor::hash(account))) << 64 | u128::from(r));
        let id = format!(
            "arn:aws:guardduty:{region}:{account}:detector/{}/finding/{:032x}",
            &detector[..32],
            u128::from(r) << 64 | u128::from(mix(r))
        );
        let instance = format!("i-{:017x}", r & 0x0fff_ffff_ffff_ffff);
        return json!({
            "SchemaVersion": "2018-10-08",
            "Id": id,
            "ProductArn": format!("arn:aws:securityhub:{region}::product/aws/guardduty"),
            "ProductName": "GuardDuty",
            "CompanyName": "Amazon",
            "Region": region,
            "GeneratorId": format!("arn:aws:guardduty:{region}:{account}:detector/{}", &detector[..32]),
            "AwsAccountId": account,
            "Types": ["TTPs/Command and Control/Backdoor:EC2-C&CActivity.B!DNS"],
            "FirstObservedAt": asff_time(created),
            "LastObservedAt": asff_time(updated),
            "CreatedAt": asff_time(created),
            "UpdatedAt": asff_time(updated),
            "Severity": {"Label": label, "Normalized": normalized(label), "Product": 5},
            "Title": format!("EC2 instance {instance} is querying a domain name associated with a known command and control server."),
            "Description": format!("EC2 instance {instance} is querying a domain name associated with a known Command & Control server."),
            "Resources": [{"Type": "AwsEc2Instance", "Id": format!("arn:aws:ec2:{region}:{account}:instance/{instance}"), "Partition": "aws", "Region": region,
                "Details": {"AwsEc2Instance": {"Type": "t3.medium", "ImageId": "ami-0abcdef1234567890", "IpV4Addresses": [format!("10.0.{}.{}", (r >> 20) as u8, (r >> 28) as u8)], "VpcId": "vpc-0a1b2c3d"}}}],
            "Network": {"Direction": "OUT", "Protocol": "UDP", "DestinationDomain": "c2.example-bad.com"},
            "WorkflowState": workflow,
            "Workflow": {"Status": workflow},
            "RecordState": record_state,
            "FindingProviderFields": {"Severity": {"Label": label}, "Types": ["TTPs/Command and Control/Backdoor:EC2-C&CActivity.B!DNS"]},
            "ProcessedAt": asff_time(updated + TimeDelta::seconds(2)),
        });
    }
    let (control, title, label, resource) = CONTROLS[(r % CONTROLS.len() as u64) as usize];
    let status = if workflow == "RESOLVED" { "PASSED" } else { "FAILED" };
    let resource_id = match resource {
        "AwsS3Bucket" => format!("arn:aws:s3:::bucket-{}", r % 1000),
        "AwsEc2SecurityGroup" => format!("arn:aws:ec2:{region}:{account}:security-group/sg-{:017x}", r & 0x0fff_ffff_ffff_ffff),
        _ => format!("AWS::::Account:{account}"),
    };
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": format!("arn:aws:securityhub:{region}:{account}:security-control/{control}/finding/{}", uuid_of(r, n)),
        "ProductArn": format!("arn:aws:securityhub:{region}::product/aws/securityhub"),
        "ProductName": "Security Hub",
        "CompanyName": "AWS",
        "Region": region,
        "GeneratorId": format!("security-control/{control}"),
        "AwsAccountId": account,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "FirstObservedAt": asff_time(created),
        "LastObservedAt": asff_time(updated),
        "CreatedAt": asff_time(created),
        "UpdatedAt": asff_time(updated),
        "Severity": {"Label": label, "Normalized": normalized(label), "Original": label},
        "Title": title,
        "Description": format!("This AWS control checks: {title}."),
        "Remediation": {"Recommendation": {"Text": "See the Security Hub controls documentation.", "Url": format!("https://docs.aws.amazon.com/console/securityhub/{control}/remediation")}},
        "Resources": [{"Type": resource, "Id": resource_id, "Partition": "aws", "Region": region}],
        "Compliance": {"Status": status, "SecurityControlId": control, "AssociatedStandards": [{"StandardsId": "standards/aws-foundational-security-best-practices/v/1.0.0"}]},
        "WorkflowState": workflow,
        "Workflow": {"Status": workflow},
        "RecordState": record_state,
        "ProcessedAt": asff_time(updated + TimeDelta::seconds(2)),
    })
}

/// Where a filter attribute lives in a finding.
fn path(attribute: &str) -> Option<&'static [&'static str]> {
    Some(match attribute {
        "Id" => &["Id"],
        "AwsAccountId" => &["AwsAccountId"],
        "ProductArn" => &["ProductArn"],
        "ProductName" => &["ProductName"],
        "CompanyName" => &["CompanyName"],
        "GeneratorId" => &["GeneratorId"],
        "Region" => &["Region"],
        "Title" => &["Title"],
        "Description" => &["Description"],
        "RecordState" => &["RecordState"],
        "WorkflowStatus" => &["Workflow", "Status"],
        "WorkflowState" => &["WorkflowState"],
        "SeverityLabel" => &["Severity", "Label"],
        "ComplianceStatus" => &["Compliance", "Status"],
        "ComplianceSecurityControlId" => &["Compliance", "SecurityControlId"],
        "ResourceType" => &["Resources", "0", "Type"],
        "ResourceId" => &["Resources", "0", "Id"],
        "CreatedAt" => &["CreatedAt"],
        "UpdatedAt" => &["UpdatedAt"],
        "FirstObservedAt" => &["FirstObservedAt"],
        "LastObservedAt" => &["LastObservedAt"],
        "ProcessedAt" => &["ProcessedAt"],
        _ => return None,
    })
}

fn lookup<'a>(finding: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(finding, |v, key| match key.parse::<usize>() {
        Ok(i) => v.get(i),
        Err(_) => v.get(*key),
    })
}

/// Whether `finding` passes every filter attribute. String filters on one attribute: the
/// positive comparisons (EQUALS, PREFIX, CONTAINS, CONTAINS_WORD) are ORed, the negative ones
/// ANDed; date filters on one attribute are ORed. Attributes this emulator does not know are
/// ignored.
pub fn matches(filters: &serde_json::Map<String, Value>, finding: &Value, now: DateTime<Utc>) -> bool {
    filters.iter().all(|(attribute, conditions)| {
        let Some(path) = path(attribute) else { return true };
        let Some(conditions) = conditions.as_array() else { return true };
        let value = lookup(finding, path);
        let is_date = attribute.ends_with("At");
        if is_date {
            let at = value.and_then(Value::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc());
            let Some(at) = at else { return false };
            return conditions.is_empty() || conditions.iter().any(|c| date_matches(c, at, now));
        }
        let text = value.and_then(Value::as_str).unwrap_or_default();
        let (mut positive, mut any_positive) = (false, false);
        for condition in conditions {
            let wanted = condition.get("Value").and_then(Value::as_str).unwrap_or_default();
            let comparison = condition.get("Comparison").and_then(Value::as_str).unwrap_or("EQUALS");
            match comparison {
                "NOT_EQUALS" if text == wanted => return false,
                "PREFIX_NOT_EQUALS" if text.starts_with(wanted) => return false,
                "NOT_CONTAINS" if text.contains(wanted) => return false,
                "NOT_EQUALS" | "PREFIX_NOT_EQUALS" | "NOT_CONTAINS" => {}
                _ => {
                    any_positive = true;
                    positive |= match comparison {
                        "PREFIX" => text.starts_with(wanted),
                        "CONTAINS" => text.contains(wanted),
                        "CONTAINS_WORD" => text.split(|c: char| !c.is_alphanumeric()).any(|w| w == wanted),
                        _ => text == wanted,
                    };
                }
            }
        }
        positive || !any_positive
    })
}

fn date_matches(condition: &Value, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let bound =
        |name: &str| condition.get(name).and_then(Value::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc());
    if let Some(range) = condition.get("DateRange") {
        let days = range.get("Value").and_then(Value::as_i64).unwrap_or(0);
        let cutoff = now - TimeDelta::days(days);
        return if range.get("Comparison").and_then(Value::as_str) == Some("OLDER_THAN") { at < cutoff } else { at >= cutoff };
    }
    bound("Start").is_none_or(|s| at >= s) && bound("End").is_none_or(|e| at <= e)
}

/// Checks a `Filters` object's shape: `InvalidInputException`'s message when it is wrong.
pub fn validate(filters: &Value) -> Result<(), String> {
    let Some(filters) = filters.as_object() else { return Err("Filters must be an object".into()) };
    if filters.len() > 10 {
        return Err("Too many filter attributes; at most 10 are allowed".into());
    }
    for (name, conditions) in filters {
        let Some(conditions) = conditions.as_array() else { return Err(format!("Filters.{name} must be a list")) };
        if conditions.len() > 20 {
            return Err(format!("Filters.{name} has more than 20 values"));
        }
        for c in conditions {
            for key in ["Start", "End"] {
                if let Some(t) = c.get(key)
                    && t.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).is_none()
                {
                    return Err(format!("Filters.{name}.{key} is not a valid timestamp: {t}"));
                }
            }
            if let Some(comparison) = c.get("Comparison").and_then(Value::as_str)
                && !["EQUALS", "PREFIX", "NOT_EQUALS", "PREFIX_NOT_EQUALS", "CONTAINS", "NOT_CONTAINS", "CONTAINS_WORD"]
                    .contains(&comparison)
            {
                return Err(format!("Filters.{name}.Comparison has an invalid value: {comparison}"));
            }
        }
    }
    Ok(())
}
