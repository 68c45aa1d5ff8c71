//! The emulator's agents as wazuh-db rows: the global `agent` table behind `/agents`, each agent's
//! `fim_entry`, `sys_programs` and `sys_osinfo` tables, with the columns a real manager fills from
//! what the agent reports (OS details, checksums, kernel) derived deterministically.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::query::{Kind, Sql, Table, iso_date, plain};
use super::samples::{OsDetails, hash64, os_details};
use super::{Agent, FimEntry, Package};

/// The manager's node and host names, as a standalone manager reports them.
pub(super) const NODE_NAME: &str = "node01";
pub(super) const MANAGER_HOST: &str = "wazuh-manager";
pub(super) const MANAGER_VERSION: &str = "Wazuh v4.14.7";
/// wazuh-db stores the manager's keepalive as 9999-12-31T23:59:59Z.
pub(super) const MANAGER_KEEPALIVE: i64 = 253_402_300_799;

/// An agent as stored: what the test gave plus what the manager knows about it.
#[derive(Clone, Debug)]
pub(super) struct Stored {
    pub agent: Agent,
    pub date_add: DateTime<Utc>,
    /// When syscollector and FIM last scanned (`scan.time`, FIM `date`).
    pub scan_time: DateTime<Utc>,
    pub packages: Vec<Package>,
    pub fim: Vec<FimEntry>,
}

impl Stored {
    pub(super) fn numeric_id(&self) -> i64 {
        self.agent.id.parse().unwrap_or(0)
    }

    fn os(&self) -> OsDetails {
        os_details(&self.agent.os_platform, &self.agent.os_name, &self.agent.os_version, &self.agent.name)
    }

    /// Never-connected agents have no database of their own yet.
    pub(super) fn has_db(&self) -> bool {
        self.numeric_id() == 0 || self.agent.status != "never_connected"
    }
}

pub(super) const AGENTS: Table = Table {
    kind: Kind::Agents,
    fields: &[
        "os.arch",
        "os.build",
        "os.codename",
        "os.major",
        "os.minor",
        "os.name",
        "os.platform",
        "os.uname",
        "os.version",
        "lastKeepAlive",
        "id",
        "dateAdd",
        "configSum",
        "manager",
        "group",
        "registerIP",
        "ip",
        "name",
        "status",
        "mergedSum",
        "version",
        "node_name",
        "group_config_status",
        "status_code",
        "disconnection_time",
    ],
    nested: &["os"],
    dates: &["lastKeepAlive", "dateAdd"],
    min_select: &["id"],
    default_sort: Some("id"),
    render: render_agent,
};

fn render_agent(field: &str, v: &Sql) -> Value {
    match (field, v) {
        ("id", Sql::Int(i)) => Value::from(format!("{i:03}")),
        ("group", Sql::Text(s)) => Value::from(s.split(',').collect::<Vec<_>>()),
        ("lastKeepAlive" | "dateAdd" | "disconnection_time", Sql::Int(t)) => Value::from(iso_date(*t)),
        _ => plain(v),
    }
}

/// A checksum-looking hex string (the manager's are MD5s of the group files).
fn pseudo_md5(seed: &str) -> String {
    format!("{:016x}{:016x}", hash64(seed), hash64(&format!("{seed}#")))
}

pub(super) fn agent_row(s: &Stored) -> Vec<Sql> {
    let a = &s.agent;
    let id = s.numeric_id();
    let manager = id == 0;
    let status = a.status.as_str();
    let never = status == "never_connected" && !manager;
    // What an agent reports about itself only exists once it has connected and sent it.
    let reported = !never && status != "pending";
    let os = s.os();
    let text = |v: &str| if reported { Sql::text(v) } else { Sql::Null };
    let opt = |v: Option<String>| if reported { Sql::opt(v) } else { Sql::Null };
    let groups = (!a.groups.is_empty()).then(|| a.groups.join(","));
    let keepalive = if never { Sql::Null } else { Sql::Int(a.last_keep_alive.timestamp()) };
    let disconnection =
        if status == "disconnected" { Sql::Int((a.last_keep_alive.timestamp() + 600).min(Utc::now().timestamp())) } else { Sql::Int(0) };
    let sums = groups.as_deref().filter(|_| reported && !manager).map(pseudo_md5);
    vec![
        opt(os.arch.map(str::to_string)),
        opt(os.build.clone()),
        opt(os.codename_pretty.map(str::to_string)),
        opt(os.major.clone()),
        opt(os.minor.clone()),
        text(&a.os_name),
        text(&a.os_platform),
        opt(os.uname.clone()),
        text(&a.os_version),
        keepalive,
        Sql::Int(id),
        Sql::Int(s.date_add.timestamp()),
        Sql::opt(sums.clone()),
        if never { Sql::Null } else { Sql::text(MANAGER_HOST) },
        Sql::opt(groups.clone()),
        Sql::text(if manager { a.ip.as_str() } else { "any" }),
        Sql::text(&a.ip),
        Sql::text(&a.name),
        Sql::text(status),
        Sql::opt(sums.map(|s| pseudo_md5(&s))),
        text(&a.version),
        Sql::text(if never { "unknown" } else { NODE_NAME }),
        Sql::text(if reported && !manager { "synced" } else { "not synced" }),
        Sql::Int(0),
        disconnection,
    ]
}

pub(super) const SYSCHECK: Table = Table {
    kind: Kind::Syscheck,
    fields: &[
        "changes",
        "date",
        "file",
        "gid",
        "gname",
        "inode",
        "md5",
        "mtime",
        "perm",
        "sha1",
        "sha256",
        "size",
        "type",
        "uid",
        "uname",
        "attributes",
        "arch",
        "value.name",
        "value.type",
    ],
    nested: &["value"],
    dates: &["date", "mtime"],
    min_select: &["file"],
    default_sort: Some("mtime"),
    render: render_syscheck,
};

/// `summary=true` narrows the columns to these.
pub(super) const SYSCHECK_SUMMARY: &[&str] = &["date", "file", "mtime"];

fn render_syscheck(field: &str, v: &Sql) -> Value {
    match (field, v) {
        ("date" | "mtime", Sql::Int(t)) => Value::from(iso_date(*t)),
        // The framework `json.loads` permissions: Windows ACLs are JSON objects.
        ("perm", Sql::Text(s)) => serde_json::from_str(s).unwrap_or_else(|_| Value::from(s.as_str())),
        _ => plain(v),
    }
}

pub(super) fn fim_row(s: &Stored, f: &FimEntry) -> Vec<Sql> {
    let windows = f.file.as_bytes().get(1) == Some(&b':');
    let (uid, gid, gname) = match (windows, f.uname.as_str()) {
        (true, _) => (Sql::text("S-1-5-32-544"), Sql::Null, Sql::Null),
        (false, "root") => (Sql::text("0"), Sql::text("0"), Sql::text("root")),
        (false, user) => (Sql::text("1000"), Sql::text("1000"), Sql::text(user)),
    };
    let date = s.scan_time.timestamp().max(f.mtime.timestamp());
    vec![
        Sql::Int(i64::from(f.changes)),
        Sql::Int(date),
        Sql::text(&f.file),
        gid,
        gname,
        Sql::Int((hash64(&f.file) % 4_000_000 + 10_000) as i64),
        Sql::text(&f.md5),
        Sql::Int(f.mtime.timestamp()),
        Sql::text(&f.perm),
        Sql::text(&f.sha1),
        Sql::text(&f.sha256),
        Sql::Int(f.size.min(i64::MAX as u64) as i64),
        Sql::text("file"),
        uid,
        Sql::text(&f.uname),
        Sql::text(if windows { "ARCHIVE" } else { "" }),
        Sql::Null,
        Sql::Null,
        Sql::Null,
    ]
}

pub(super) const PACKAGES: Table = Table {
    kind: Kind::Syscollector,
    fields: &[
        "scan.id",
        "scan.time",
        "multiarch",
        "description",
        "source",
        "name",
        "architecture",
        "vendor",
        "size",
        "format",
        "version",
        "section",
        "priority",
        "location",
        "install_time",
    ],
    nested: &["scan"],
    dates: &["scan.time", "install_time"],
    min_select: &[],
    default_sort: None,
    render: render_syscollector,
};

fn render_syscollector(_: &str, v: &Sql) -> Value {
    plain(v)
}

/// `scan.time` as syscollector stores it.
fn scan_time(t: DateTime<Utc>) -> Sql {
    Sql::text(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

pub(super) fn package_row(s: &Stored, p: &Package) -> Vec<Sql> {
    let h = hash64(&format!("{}/{}", p.name, p.version));
    let installed = (s.date_add - chrono::Duration::days((h % 400) as i64)).format("%Y/%m/%d %H:%M:%S").to_string();
    let (multiarch, source, section, priority, location, install_time) = match p.format.as_str() {
        "deb" => {
            let multiarch = if p.name.starts_with("lib") { "same" } else { "foreign" };
            let section = if p.name.starts_with("lib") {
                "libs"
            } else if p.name.starts_with("python") {
                "python"
            } else {
                ["admin", "net", "utils", "web", "database"][(h % 5) as usize]
            };
            let priority = ["optional", "optional", "optional", "standard", "important"][(h % 5) as usize];
            let source = p.name.trim_end_matches("-client").trim_end_matches("-server").trim_end_matches("-common");
            (Sql::text(multiarch), Sql::text(source), Sql::text(section), Sql::text(priority), Sql::text(""), Sql::text(""))
        }
        "rpm" => {
            let source = format!("{}-{}.src.rpm", p.name, p.version);
            (Sql::Null, Sql::text(source), Sql::text("Unspecified"), Sql::Null, Sql::text(""), Sql::text(installed))
        }
        "win" => {
            let location = format!("C:\\Program Files\\{}", p.name);
            let date = (s.date_add - chrono::Duration::days((h % 400) as i64)).format("%Y%m%d").to_string();
            (Sql::Null, Sql::Null, Sql::Null, Sql::Null, Sql::text(location), Sql::text(date))
        }
        _ => (Sql::Null, Sql::Null, Sql::Null, Sql::Null, Sql::text(format!("/Applications/{}.app", p.name)), Sql::text(installed)),
    };
    vec![
        Sql::Int(0),
        scan_time(s.scan_time),
        multiarch,
        Sql::text(&p.description),
        source,
        Sql::text(&p.name),
        Sql::text(&p.architecture),
        Sql::text(&p.vendor),
        Sql::Int((h % 50_000 + 12) as i64),
        Sql::text(&p.format),
        Sql::text(&p.version),
        section,
        priority,
        location,
        install_time,
    ]
}

pub(super) const OS: Table = Table {
    kind: Kind::Syscollector,
    fields: &[
        "os.build",
        "os.codename",
        "os.display_version",
        "os.major",
        "os.minor",
        "os.name",
        "os.platform",
        "os.version",
        "scan.id",
        "scan.time",
        "sysname",
        "release",
        "version",
        "architecture",
        "hostname",
        "os_release",
    ],
    nested: &["os", "scan"],
    dates: &["scan.time"],
    min_select: &[],
    default_sort: None,
    render: render_syscollector,
};

/// The fields `sys_osinfo` has on Windows agents; Linux ones add codename, platform, sysname and
/// release.
pub(super) const OS_WINDOWS: &[&str] = &[
    "hostname",
    "os.version",
    "os.name",
    "architecture",
    "os.major",
    "os.minor",
    "os.build",
    "version",
    "scan.time",
    "scan.id",
    "os_release",
    "os.display_version",
];

pub(super) fn os_allowed(s: &Stored) -> Vec<&'static str> {
    let windows = s.agent.os_name.contains("Windows");
    OS.fields.iter().copied().filter(|f| !windows || OS_WINDOWS.contains(f)).collect()
}

pub(super) fn os_row(s: &Stored) -> Vec<Sql> {
    let a = &s.agent;
    let os = s.os();
    let windows = a.os_name.contains("Windows");
    let linux = |v: Option<String>| if windows { Sql::Null } else { Sql::opt(v) };
    let version = match os.codename_pretty {
        Some(pretty) if a.os_platform == "ubuntu" => format!("{} ({pretty})", a.os_version),
        _ => a.os_version.clone(),
    };
    vec![
        Sql::opt(os.build.clone()),
        linux(os.codename.map(str::to_string)),
        Sql::opt(os.display_version.map(str::to_string)),
        Sql::opt(os.major.clone()),
        Sql::opt(os.minor.clone()),
        Sql::text(&a.os_name),
        linux(Some(a.os_platform.clone())),
        Sql::text(version),
        Sql::Int(0),
        scan_time(s.scan_time),
        linux(os.sysname.map(str::to_string)),
        linux(os.release.map(str::to_string)),
        Sql::opt(os.kernel_version.map(str::to_string)),
        Sql::opt(os.arch.map(str::to_string)),
        Sql::text(&a.name),
        Sql::opt(os.os_release.map(str::to_string)),
    ]
}
