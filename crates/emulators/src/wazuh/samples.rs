//! Realistic fleet data: OS details a manager derives from an agent's report (codenames, kernels,
//! `uname`), and the generator behind `WazuhEmulator::generate` — hostnames, OS mix, statuses,
//! packages from real distribution catalogs and FIM entries over well-known paths.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::rngs::StdRng;

use super::{Agent, FimEntry, Package};

/// FNV-1a: a stable hash for values derived from names (inodes, sizes, checksums).
pub(super) fn hash64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// What the manager records about an agent's OS besides platform, name and version.
#[derive(Default)]
pub(super) struct OsDetails {
    /// `/agents` shows the release name (`Focal Fossa`)…
    pub codename_pretty: Option<&'static str>,
    /// …syscollector the short one (`focal`).
    pub codename: Option<&'static str>,
    pub major: Option<String>,
    pub minor: Option<String>,
    pub build: Option<String>,
    pub uname: Option<String>,
    pub arch: Option<&'static str>,
    pub sysname: Option<&'static str>,
    pub release: Option<&'static str>,
    pub kernel_version: Option<&'static str>,
    pub display_version: Option<&'static str>,
    pub os_release: Option<&'static str>,
}

/// A Linux release and the kernel it ships.
struct Release {
    platform: &'static str,
    /// Matched as a prefix of the reported version.
    version: &'static str,
    /// The release name as `/agents` shows it, and as syscollector does.
    pretty: Option<&'static str>,
    codename: Option<&'static str>,
    kernel: &'static str,
    build: &'static str,
}

const LINUX: &[Release] = &[
    Release {
        platform: "ubuntu",
        version: "24.04",
        pretty: Some("Noble Numbat"),
        codename: Some("noble"),
        kernel: "6.8.0-45-generic",
        build: "#45-Ubuntu SMP PREEMPT_DYNAMIC Fri Aug 30 12:02:04 UTC 2024",
    },
    Release {
        platform: "ubuntu",
        version: "22.04",
        pretty: Some("Jammy Jellyfish"),
        codename: Some("jammy"),
        kernel: "5.15.0-119-generic",
        build: "#129-Ubuntu SMP Fri Aug 2 19:25:20 UTC 2024",
    },
    Release {
        platform: "ubuntu",
        version: "20.04",
        pretty: Some("Focal Fossa"),
        codename: Some("focal"),
        kernel: "5.4.0-193-generic",
        build: "#213-Ubuntu SMP Fri Aug 2 19:14:16 UTC 2024",
    },
    Release {
        platform: "ubuntu",
        version: "18.04",
        pretty: Some("Bionic Beaver"),
        codename: Some("bionic"),
        kernel: "4.15.0-213-generic",
        build: "#224-Ubuntu SMP Mon Jun 19 13:30:12 UTC 2023",
    },
    Release {
        platform: "debian",
        version: "12",
        pretty: Some("bookworm"),
        codename: Some("bookworm"),
        kernel: "6.1.0-25-amd64",
        build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.106-3 (2024-08-26)",
    },
    Release {
        platform: "debian",
        version: "11",
        pretty: Some("bullseye"),
        codename: Some("bullseye"),
        kernel: "5.10.0-32-amd64",
        build: "#1 SMP Debian 5.10.223-1 (2024-08-10)",
    },
    Release {
        platform: "centos",
        version: "7",
        pretty: Some("Core"),
        codename: Some("Core"),
        kernel: "3.10.0-1160.119.1.el7.x86_64",
        build: "#1 SMP Tue Jun 4 14:43:51 UTC 2024",
    },
    Release {
        platform: "rhel",
        version: "9",
        pretty: Some("Plow"),
        codename: Some("Plow"),
        kernel: "5.14.0-427.33.1.el9_4.x86_64",
        build: "#1 SMP PREEMPT_DYNAMIC Fri Aug 16 10:56:24 EDT 2024",
    },
    Release {
        platform: "rhel",
        version: "8",
        pretty: Some("Ootpa"),
        codename: Some("Ootpa"),
        kernel: "4.18.0-553.16.1.el8_10.x86_64",
        build: "#1 SMP Thu Aug 1 04:16:12 EDT 2024",
    },
    Release {
        platform: "amzn",
        version: "2023",
        pretty: None,
        codename: None,
        kernel: "6.1.109-118.189.amzn2023.x86_64",
        build: "#1 SMP PREEMPT_DYNAMIC Tue Sep 10 08:59:12 UTC 2024",
    },
];

pub(super) fn os_details(platform: &str, name: &str, version: &str, hostname: &str) -> OsDetails {
    let mut numbers = version.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
    let major = numbers.next().map(str::to_string);
    let minor = numbers.next().map(str::to_string);
    let build = numbers.next().map(str::to_string);
    if name.contains("Windows") {
        let display = if version.starts_with("10.0.2") { Some("23H2") } else { None };
        return OsDetails {
            major,
            minor,
            build,
            uname: Some(format!("{name} {version}")),
            arch: Some("x86_64"),
            kernel_version: None,
            display_version: display,
            os_release: Some(if version.starts_with("10.0.17763") { "1809" } else { "2009" }),
            ..OsDetails::default()
        };
    }
    if platform == "darwin" {
        return OsDetails {
            codename_pretty: Some("Sonoma"),
            codename: Some("Sonoma"),
            major,
            minor,
            uname: Some(format!("Darwin |{hostname} |23.6.0 |Darwin Kernel Version 23.6.0 |arm64")),
            arch: Some("arm64"),
            sysname: Some("Darwin"),
            release: Some("23.6.0"),
            kernel_version: Some("Darwin Kernel Version 23.6.0"),
            ..OsDetails::default()
        };
    }
    let known = LINUX.iter().find(|r| r.platform == platform && version.starts_with(r.version));
    let (pretty, codename, release, kernel) = known.map_or((None, None, "6.1.0", "#1 SMP"), |r| (r.pretty, r.codename, r.kernel, r.build));
    OsDetails {
        codename_pretty: pretty,
        codename,
        major,
        minor,
        build: None,
        uname: Some(format!("Linux |{hostname} |{release} |{kernel} |x86_64")),
        arch: Some("x86_64"),
        sysname: Some("Linux"),
        release: Some(release),
        kernel_version: Some(kernel),
        display_version: None,
        os_release: None,
    }
}

/// An OS a generated agent runs: platform, name, version, package format, vendor.
struct Profile {
    platform: &'static str,
    name: &'static str,
    version: &'static str,
    format: &'static str,
    vendor: &'static str,
}

const PROFILES: &[Profile] = &[
    Profile { platform: "ubuntu", name: "Ubuntu", version: "22.04.4 LTS", format: "deb", vendor: UBUNTU },
    Profile { platform: "ubuntu", name: "Ubuntu", version: "20.04.6 LTS", format: "deb", vendor: UBUNTU },
    Profile { platform: "ubuntu", name: "Ubuntu", version: "24.04.1 LTS", format: "deb", vendor: UBUNTU },
    Profile { platform: "debian", name: "Debian GNU/Linux", version: "12", format: "deb", vendor: DEBIAN },
    Profile { platform: "centos", name: "CentOS Linux", version: "7.9.2009", format: "rpm", vendor: "CentOS" },
    Profile { platform: "rhel", name: "Red Hat Enterprise Linux", version: "9.4", format: "rpm", vendor: "Red Hat, Inc." },
    Profile { platform: "amzn", name: "Amazon Linux", version: "2023", format: "rpm", vendor: "Amazon Linux" },
    Profile {
        platform: "windows",
        name: "Microsoft Windows Server 2019 Datacenter",
        version: "10.0.17763.6293",
        format: "win",
        vendor: "Microsoft Corporation",
    },
    Profile {
        platform: "windows",
        name: "Microsoft Windows 11 Pro",
        version: "10.0.22631.4169",
        format: "win",
        vendor: "Microsoft Corporation",
    },
    Profile { platform: "darwin", name: "macOS", version: "14.6.1", format: "pkg", vendor: "Apple" },
];

const UBUNTU: &str = "Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>";
const DEBIAN: &str = "Debian Security Team <team@security.debian.org>";

/// (name, version, description)
const DEB: &[(&str, &str, &str)] = &[
    ("openssh-client", "1:8.9p1-3ubuntu0.10", "secure shell (SSH) client, for secure access to remote machines"),
    ("openssh-server", "1:8.9p1-3ubuntu0.10", "secure shell (SSH) server, for secure access from remote machines"),
    ("openssl", "3.0.2-0ubuntu1.18", "Secure Sockets Layer toolkit - cryptographic utility"),
    ("libssl3", "3.0.2-0ubuntu1.18", "Secure Sockets Layer toolkit - shared libraries"),
    ("bash", "5.1-6ubuntu1.1", "GNU Bourne Again SHell"),
    ("coreutils", "8.32-4.1ubuntu1.2", "GNU core utilities"),
    ("sudo", "1.9.9-1ubuntu2.4", "Provide limited super user privileges to specific users"),
    ("curl", "7.81.0-1ubuntu1.18", "command line tool for transferring data with URL syntax"),
    ("libcurl4", "7.81.0-1ubuntu1.18", "easy-to-use client-side URL transfer library (OpenSSL flavour)"),
    ("wget", "1.21.2-2ubuntu1.1", "retrieves files from the web"),
    ("git", "1:2.34.1-1ubuntu1.11", "fast, scalable, distributed revision control system"),
    ("vim", "2:8.2.3995-1ubuntu2.19", "Vi IMproved - enhanced vi editor"),
    ("python3", "3.10.6-1~22.04.1", "interactive high-level object-oriented language (default python3 version)"),
    ("python3-yaml", "5.4.1-1ubuntu1", "YAML parser and emitter for Python3"),
    ("libc6", "2.35-0ubuntu3.8", "GNU C Library: Shared libraries"),
    ("libsystemd0", "249.11-0ubuntu3.12", "systemd utility library"),
    ("systemd", "249.11-0ubuntu3.12", "system and service manager"),
    ("rsyslog", "8.2112.0-2ubuntu2.2", "reliable system and kernel logging daemon"),
    ("nginx", "1.18.0-6ubuntu14.4", "small, powerful, scalable web/proxy server"),
    ("apache2", "2.4.52-1ubuntu4.12", "Apache HTTP Server"),
    ("postgresql-14", "14.13-0ubuntu0.22.04.1", "The World's Most Advanced Open Source Relational Database"),
    ("mysql-server", "8.0.39-0ubuntu0.22.04.1", "MySQL database server (metapackage depending on the latest version)"),
    ("redis-server", "5:6.0.16-1ubuntu1", "Persistent key-value database with network interface"),
    ("docker-ce", "5:27.2.1-1~ubuntu.22.04~jammy", "Docker: the open-source application container engine"),
    ("containerd.io", "1.7.21-1", "An open and reliable container runtime"),
    ("wazuh-agent", "4.14.7-1", "Wazuh helps you to gain security visibility into your infrastructure"),
    ("tzdata", "2024a-0ubuntu0.22.04.1", "time zone and daylight-saving time data"),
    ("ca-certificates", "20240203~22.04.1", "Common CA certificates"),
    ("gnupg", "2.2.27-3ubuntu2.1", "GNU privacy guard - a free PGP replacement"),
    ("libxml2", "2.9.13+dfsg-1ubuntu0.4", "GNOME XML library"),
    ("zlib1g", "1:1.2.11.dfsg-2ubuntu9.2", "compression library - runtime"),
    ("tar", "1.34+dfsg-1ubuntu0.1.22.04.2", "GNU version of the tar archiving utility"),
    ("less", "590-1ubuntu0.22.04.3", "pager program similar to more"),
    ("cron", "3.0pl1-137ubuntu3", "process scheduling daemon"),
    ("ufw", "0.36.1-4ubuntu0.1", "program for managing a Netfilter firewall"),
    ("libpam-modules", "1.4.0-11ubuntu2.4", "Pluggable Authentication Modules for PAM"),
    ("linux-image-generic", "5.15.0.119.119", "Generic Linux kernel image"),
    ("unattended-upgrades", "2.8ubuntu1", "automatic installation of security upgrades"),
];

const RPM: &[(&str, &str, &str)] = &[
    ("openssh-clients", "8.7p1-38.el9_4.4", "An open source SSH client applications"),
    ("openssh-server", "8.7p1-38.el9_4.4", "An open source SSH server daemon"),
    ("openssl", "3.0.7-28.el9_4", "Utilities from the general purpose cryptography library with TLS implementation"),
    ("openssl-libs", "3.0.7-28.el9_4", "A general purpose cryptography library with TLS implementation"),
    ("bash", "5.1.8-9.el9", "The GNU Bourne Again shell"),
    ("coreutils", "8.32-35.el9", "A set of basic GNU tools commonly used in shell scripts"),
    ("sudo", "1.9.5p2-10.el9_3", "Allows restricted root access for specified users"),
    ("curl", "7.76.1-29.el9_4.1", "A utility for getting files from remote servers (FTP, HTTP, and others)"),
    ("glibc", "2.34-100.el9_4.3", "The GNU libc libraries"),
    ("systemd", "252-32.el9_4.7", "System and Service Manager"),
    ("rsyslog", "8.2310.0-4.el9", "Enhanced system logging and kernel message trapping daemon"),
    ("kernel", "5.14.0-427.33.1.el9_4", "The Linux kernel"),
    ("python3", "3.9.18-3.el9_4.5", "Python 3.9 interpreter"),
    ("httpd", "2.4.57-11.el9_4.1", "Apache HTTP Server"),
    ("nginx", "1:1.20.1-14.el9_2.1", "A high performance web server and reverse proxy server"),
    ("postgresql-server", "13.14-1.el9_3", "The programs needed to create and run a PostgreSQL server"),
    ("firewalld", "1.3.4-1.el9", "A firewall daemon with D-Bus interface providing a dynamic firewall"),
    ("selinux-policy", "38.1.35-2.el9_4.2", "SELinux policy configuration"),
    ("wazuh-agent", "4.14.7-1", "Wazuh helps you to gain security visibility into your infrastructure"),
    ("vim-minimal", "2:8.2.2637-20.el9_1", "A minimal version of the VIM editor"),
    ("tar", "2:1.34-6.el9_4.1", "GNU file archiving program"),
    ("ca-certificates", "2024.2.69_v8.0.303-91.4.el9_4", "The Mozilla CA root certificate bundle"),
    ("chrony", "4.5-1.el9", "An NTP client/server"),
    ("dnf", "4.14.0-9.el9", "Package manager"),
];

const WIN: &[(&str, &str, &str, &str)] = &[
    ("Google Chrome", "128.0.6613.138", "Google LLC", ""),
    ("Mozilla Firefox (x64 en-US)", "130.0.1", "Mozilla", ""),
    ("Microsoft Edge", "128.0.2739.79", "Microsoft Corporation", ""),
    ("7-Zip 24.08 (x64)", "24.08", "Igor Pavlov", ""),
    ("Notepad++ (64-bit x64)", "8.6.9", "Notepad++ Team", ""),
    ("Wazuh Agent", "4.14.7", "Wazuh, Inc.", ""),
    ("Microsoft Visual C++ 2022 X64 Minimum Runtime - 14.40.33810", "14.40.33810", "Microsoft Corporation", ""),
    ("Microsoft Office Professional Plus 2019", "16.0.10414.20002", "Microsoft Corporation", ""),
    ("Adobe Acrobat (64-bit)", "24.003.20112", "Adobe", ""),
    ("Zoom Workplace", "6.2.0", "Zoom Video Communications, Inc.", ""),
    ("PowerShell 7-x64", "7.4.5.0", "Microsoft Corporation", ""),
    ("Git", "2.46.0", "The Git Development Community", ""),
    ("Python 3.12.6 (64-bit)", "3.12.6150.0", "Python Software Foundation", ""),
    ("VMware Tools", "12.4.5.23787635", "VMware, Inc.", ""),
];

const LINUX_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/fstab",
    "/etc/crontab",
    "/etc/ssh/sshd_config",
    "/etc/ssh/ssh_config",
    "/etc/pam.d/common-auth",
    "/etc/pam.d/sshd",
    "/etc/login.defs",
    "/etc/environment",
    "/etc/profile",
    "/etc/bash.bashrc",
    "/etc/security/limits.conf",
    "/etc/sysctl.conf",
    "/etc/rsyslog.conf",
    "/etc/systemd/system.conf",
    "/usr/bin/sudo",
    "/usr/bin/passwd",
    "/usr/bin/ssh",
    "/usr/bin/curl",
    "/usr/sbin/sshd",
    "/usr/sbin/useradd",
    "/bin/bash",
    "/bin/ls",
    "/bin/ps",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/boot/grub/grub.cfg",
    "/root/.ssh/authorized_keys",
    "/root/.bashrc",
];

const WINDOWS_FILES: &[&str] = &[
    "c:\\windows\\system32\\drivers\\etc\\hosts",
    "c:\\windows\\system32\\drivers\\etc\\networks",
    "c:\\windows\\system32\\drivers\\etc\\protocol",
    "c:\\windows\\system32\\drivers\\etc\\services",
    "c:\\windows\\system32\\cmd.exe",
    "c:\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe",
    "c:\\windows\\system32\\net.exe",
    "c:\\windows\\system32\\reg.exe",
    "c:\\windows\\system32\\sc.exe",
    "c:\\windows\\system32\\wbem\\wmic.exe",
    "c:\\windows\\win.ini",
    "c:\\windows\\system.ini",
    "c:\\programdata\\microsoft\\windows\\start menu\\programs\\startup\\desktop.ini",
];

const ROLES: &[&str] = &["web", "db", "app", "api", "cache", "mail", "dns", "vpn", "build", "ci", "proxy", "kafka", "elastic", "ldap"];

fn hex(rng: &mut StdRng, len: usize) -> String {
    (0..len).map(|_| char::from_digit(rng.random_range(0..16), 16).expect("hex digit")).collect()
}

/// A generated agent with its packages and FIM entries; `index` is 1-based and gives the id.
pub(super) fn agent(
    rng: &mut StdRng,
    index: usize,
    packages_each: usize,
    fim_each: usize,
    now: DateTime<Utc>,
) -> (Agent, Vec<Package>, Vec<FimEntry>) {
    let profile = &PROFILES[rng.random_range(0..PROFILES.len())];
    let windows = profile.platform == "windows";
    let role = ROLES[index % ROLES.len()];
    let name = if windows {
        format!("WIN-{}-{:04}", role.to_uppercase(), index)
    } else {
        format!("{role}-{:02}.{}", index / ROLES.len() + 1, ["prod", "staging", "corp"][index % 3])
    };
    let status = match rng.random_range(0..100) {
        0..80 => "active",
        80..92 => "disconnected",
        92..97 => "never_connected",
        _ => "pending",
    };
    let last_keep_alive = match status {
        "active" => now - Duration::seconds(rng.random_range(0..60)),
        "disconnected" => now - Duration::seconds(rng.random_range(3600..30 * 86400)),
        _ => now,
    };
    let version = ["Wazuh v4.14.7", "Wazuh v4.14.7", "Wazuh v4.14.7", "Wazuh v4.12.0", "Wazuh v4.9.2"][rng.random_range(0..5)];
    let mut groups = vec!["default".to_string()];
    groups.push(if windows { "windows".into() } else { profile.platform.to_string() });
    if rng.random_bool(0.5) {
        groups.push(role.to_string());
    }
    let ip = format!("10.{}.{}.{}", 10 + index / 65536 % 200, index / 256 % 256, index % 256);
    let agent = Agent {
        id: format!("{index:03}"),
        name: name.clone(),
        ip,
        status: status.to_string(),
        os_platform: profile.platform.to_string(),
        os_name: profile.name.to_string(),
        os_version: profile.version.to_string(),
        last_keep_alive,
        version: version.to_string(),
        groups,
    };
    let packages = (0..packages_each).map(|k| package(rng, profile, k)).collect();
    let fim = (0..fim_each).map(|k| fim_entry(rng, windows, k, now)).collect();
    (agent, packages, fim)
}

fn package(rng: &mut StdRng, profile: &Profile, k: usize) -> Package {
    let arch = match profile.format {
        "deb" => "amd64",
        "rpm" => "x86_64",
        "win" => "x86_64",
        _ => "arm64",
    };
    let (name, version, description, vendor) = match profile.format {
        "deb" | "rpm" => {
            let catalog = if profile.format == "deb" { DEB } else { RPM };
            let (name, version, description) = catalog[k % catalog.len()];
            let round = k / catalog.len();
            if round == 0 {
                (name.to_string(), version.to_string(), description.to_string(), profile.vendor.to_string())
            } else {
                let extra = format!("lib{}{round}", name.split('-').next().unwrap_or(name));
                (
                    extra,
                    format!("{}.{}.{}-1", round % 9 + 1, rng.random_range(0..20), rng.random_range(0..10)),
                    format!("{description} (extra)"),
                    profile.vendor.to_string(),
                )
            }
        }
        "win" => {
            let (name, version, vendor, description) = WIN[k % WIN.len()];
            let round = k / WIN.len();
            let name = if round == 0 { name.to_string() } else { format!("{name} Add-in {round}") };
            (name, version.to_string(), description.to_string(), vendor.to_string())
        }
        _ => (
            format!("com.apple.pkg.Tool{k}"),
            format!("14.{}.{}", k % 7, rng.random_range(0..10)),
            String::new(),
            profile.vendor.to_string(),
        ),
    };
    Package { name, version, architecture: arch.to_string(), vendor, format: profile.format.to_string(), description }
}

fn fim_entry(rng: &mut StdRng, windows: bool, k: usize, now: DateTime<Utc>) -> FimEntry {
    let catalog = if windows { WINDOWS_FILES } else { LINUX_FILES };
    let round = k / catalog.len();
    let file = match (round, windows) {
        (0, _) => catalog[k].to_string(),
        (_, false) => format!("/etc/app/conf.d/{k:05}.conf"),
        (_, true) => format!("c:\\programdata\\app\\config\\{k:05}.xml"),
    };
    let perm = if windows {
        r#"{"S-1-5-32-544":{"name":"Administrators","allowed":["full_control"]},"S-1-5-18":{"name":"SYSTEM","allowed":["full_control"]}}"#
            .to_string()
    } else if file.contains("shadow") {
        "rw-r-----".to_string()
    } else if file.starts_with("/usr/bin") || file.starts_with("/bin") || file.starts_with("/usr/sbin") {
        "rwxr-xr-x".to_string()
    } else {
        "rw-r--r--".to_string()
    };
    FimEntry {
        file,
        size: rng.random_range(24..2_000_000),
        sha256: hex(rng, 64),
        md5: hex(rng, 32),
        sha1: hex(rng, 40),
        mtime: now - Duration::seconds(rng.random_range(3600..400 * 86400)),
        perm,
        uname: if windows { "Administrators".into() } else { "root".into() },
        changes: rng.random_range(1..4),
    }
}
