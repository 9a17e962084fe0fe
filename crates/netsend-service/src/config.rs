//! The TOML configuration, every key optional with a documented default.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use netsend_control::config::default_computer_name;
use netsend_proto::policy::{
    parse_network, AccessList, Limits, NamePattern, Policy, StatusAudience,
};
use netsend_wire::{CodePage, NetbiosName};
use serde::{Deserialize, Serialize};

pub use netsend_control::config::computer_name_from_hostname;
pub use netsend_control::protocol::MAX_MESSAGE_LEN;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The computer name (default: the hostname, upper-cased, first label, cut to 15).
    #[serde(default = "default_computer_name")]
    pub computer_name: String,
    /// The workgroup or domain.
    #[serde(default = "default_workgroup")]
    pub workgroup: String,
    /// OEM code page of names and text ("CP850" or "CP437").
    #[serde(default, with = "code_page_serde")]
    pub code_page: CodePage,
    /// Where the inbox, the alias table and the daemon log live.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The control socket used by the CLI.
    #[serde(default = "default_control_socket")]
    pub control_socket: PathBuf,
    /// User to switch to after binding, when started as root ("" = keep).
    #[serde(default = "default_user")]
    pub user: String,
    /// Unix group whose members (and root) may send `*`, `/DOMAIN` and `/USERS`.
    #[serde(default = "default_broadcast_group")]
    pub broadcast_group: String,
    /// Where login sessions come from: "auto" (systemd-logind when it answers
    /// on the system bus, else utmp), "logind" or "utmp".
    #[serde(default)]
    pub sessions: SessionSource,
    /// The utmp file read to find logged-in users.
    #[serde(default = "default_utmp_path")]
    pub utmp_path: PathBuf,
    /// Samba's smb.conf, passed to `smbstatus -s` to find the SMB sessions of
    /// a Samba on this host (`/USERS`); unset: smbstatus's own default.
    #[serde(default)]
    pub samba_config: Option<PathBuf>,
    /// Sockets and ports.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Resource limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Allow and deny lists.
    #[serde(default)]
    pub filter: FilterConfig,
    /// Calls from other hosts' administrators (`servername`, `--server`).
    #[serde(default)]
    pub remote: RemoteConfig,
    /// Verified senders: pinned host keys, the verified send path, and
    /// the sender names that must arrive verified.
    #[serde(default)]
    pub trust: TrustConfig,
    /// lmhosts-style name → address entries.
    #[serde(default)]
    pub static_names: Vec<StaticName>,
    /// An optional WINS server.
    #[serde(default)]
    pub wins: Option<WinsConfig>,
    /// Being the WINS server of the site.
    #[serde(default)]
    pub wins_server: WinsServerConfig,
    /// How received messages are shown on this host.
    #[serde(default)]
    pub display: DisplayConfig,
    /// Where the log goes.
    #[serde(default)]
    pub log: LogConfig,
    /// Inbox retention.
    #[serde(default)]
    pub inbox: InboxConfig,
    /// The outgoing queue.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Our names on the network.
    #[serde(default)]
    pub names: NamesConfig,
    /// The record of sent messages.
    #[serde(default)]
    pub sent: SentConfig,
    /// Delivery hooks, run after a message is stored.
    #[serde(default)]
    pub hooks: Vec<HookConfig>,
    /// The Prometheus/OpenMetrics endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The Alerter: administrative alerts to the alert names.
    #[serde(default)]
    pub alerter: AlerterConfig,
    /// Browsing: our announcements and the host list (`netsend view`).
    #[serde(default)]
    pub browse: BrowseConfig,
    /// The site gateway to the NATS JetStream backbone (`[gateway]`
    /// absent: off).
    #[serde(default)]
    pub gateway: Option<GatewayConfig>,
}

/// `[gateway]`: this service is its site's gateway, carrying names and
/// messages to the other sites over a NATS JetStream cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// This site's name: 1–32 characters of A–Z, 0–9, `-`, `_` (kept upper
    /// case).
    pub site: String,
    /// The NATS servers, `nats://host:port` or `tls://host:port`.
    pub nats: Vec<String>,
    /// A NATS `.creds` file (JWT and NKey seed).
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// User name for user/password authentication.
    #[serde(default)]
    pub user: Option<String>,
    /// Password for user/password authentication.
    #[serde(default)]
    pub password: Option<String>,
    /// Token authentication.
    #[serde(default)]
    pub token: Option<String>,
    /// CA certificates (PEM) the servers' certificates are checked against.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Our client certificate (PEM), for servers that verify clients.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The key of `tls_cert` (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Refuse a connection that is not TLS.
    #[serde(default)]
    pub tls_required: bool,
    /// Which address a query for a remote name is answered with.
    #[serde(default)]
    pub mode: GatewayMode,
    /// Copies JetStream keeps of the stream and the buckets (1..=5).
    #[serde(default = "default_gateway_replicas")]
    pub replicas: usize,
    /// The domains whose broadcasts this site takes part in (empty: the
    /// workgroup).
    #[serde(default)]
    pub domains: Vec<String>,
    /// The JetStream stream of messages, receipts and broadcasts.
    #[serde(default = "default_gateway_stream")]
    pub stream: String,
    /// The KV bucket of the name directory.
    #[serde(default = "default_names_bucket")]
    pub names_bucket: String,
    /// The KV bucket of delivered message ids.
    #[serde(default = "default_seen_bucket")]
    pub seen_bucket: String,
}

/// How a gateway answers a name query for a name held at another site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayMode {
    /// With its own address: the message comes to the gateway, which carries
    /// it over the backbone (sites that cannot reach each other).
    #[default]
    Proxy,
    /// With the owner's address at its site (routed sites).
    Direct,
}

const fn default_gateway_replicas() -> usize {
    3
}

fn default_gateway_stream() -> String {
    "NETSEND".into()
}

fn default_names_bucket() -> String {
    "netsend_names".into()
}

fn default_seen_bucket() -> String {
    "netsend_seen".into()
}

impl GatewayConfig {
    /// The site name, checked and upper-cased.
    pub fn site_name(&self) -> Result<netsend_proto::sites::SiteName, ConfigError> {
        netsend_proto::sites::SiteName::new(&self.site)
            .map_err(|e| ConfigError::Invalid("gateway.site".into(), e.to_string()))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, e: &str| ConfigError::Invalid(key.to_owned(), e.to_owned());
        self.site_name()?;
        if self.nats.is_empty() || self.nats.iter().any(|u| u.trim().is_empty()) {
            return Err(invalid("gateway.nats", "list at least one NATS server URL"));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(invalid("gateway.replicas", "must be 1..=5"));
        }
        let token = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        for (key, value) in [
            ("gateway.stream", &self.stream),
            ("gateway.names_bucket", &self.names_bucket),
            ("gateway.seen_bucket", &self.seen_bucket),
        ] {
            if !token(value) {
                return Err(invalid(
                    key,
                    "1 to 64 characters of A-Z, a-z, 0-9, '-', '_'",
                ));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(invalid(
                "gateway.tls_cert",
                "give tls_cert and tls_key together",
            ));
        }
        if self.password.is_some() && self.user.is_none() {
            return Err(invalid("gateway.password", "a password needs a user"));
        }
        if self.user.is_some() && self.password.is_none() {
            return Err(invalid("gateway.user", "a user needs a password"));
        }
        let methods = [
            self.credentials.is_some(),
            self.user.is_some(),
            self.token.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(invalid(
                "gateway.credentials",
                "give one of credentials, user/password or token",
            ));
        }
        // The files are read at each connection, in the background: a
        // wrong path is said at start, not as a link that never comes up.
        for (key, path) in [
            ("gateway.credentials", &self.credentials),
            ("gateway.tls_ca", &self.tls_ca),
            ("gateway.tls_cert", &self.tls_cert),
            ("gateway.tls_key", &self.tls_key),
        ] {
            let Some(path) = path else { continue };
            if let Err(e) = std::fs::File::open(path) {
                return Err(ConfigError::Invalid(
                    key.to_owned(),
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        }
        Ok(())
    }
}

/// `[alerter]`: administrative alerts sent to the alert names, batched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlerterConfig {
    /// Who gets every alert: aliases, users or computer names, resolved like
    /// any send.
    #[serde(default)]
    pub names: Vec<String>,
    /// Whether the Alerter runs (default: when `names` is not empty).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Unix groups whose members (and root) may raise alerts (default: the
    /// `broadcast_group`).
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Identical alerts within this many minutes become one message with a
    /// count (NT's `AlertSched`).
    #[serde(default = "default_batch_minutes")]
    pub batch_minutes: u64,
    /// How long the first alert of a kind waits for identical ones, seconds.
    #[serde(default = "default_gather_secs")]
    pub gather_secs: u64,
    /// Most alert messages sent per minute; the rest are dropped and counted.
    #[serde(default = "default_alerts_per_minute")]
    pub max_per_minute: u32,
    /// The disk watch, when set.
    #[serde(default)]
    pub disk: Option<DiskWatchConfig>,
    /// The journal watch, when set.
    #[serde(default)]
    pub journal: Option<JournalWatchConfig>,
}

const fn default_batch_minutes() -> u64 {
    5
}
const fn default_gather_secs() -> u64 {
    10
}
const fn default_alerts_per_minute() -> u32 {
    20
}

impl Default for AlerterConfig {
    fn default() -> Self {
        Self {
            names: Vec::new(),
            enabled: None,
            groups: None,
            batch_minutes: default_batch_minutes(),
            gather_secs: default_gather_secs(),
            max_per_minute: default_alerts_per_minute(),
            disk: None,
            journal: None,
        }
    }
}

/// `[browse]`: being seen in browse lists, and seeing others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowseConfig {
    /// Announce this host on `\MAILSLOT\BROWSE` (HostAnnouncement to
    /// `WORKGROUP<1d>`); false stays silent (no announcements, no
    /// AnnouncementRequest), while the host list is still built from what is
    /// heard.
    #[serde(default = "default_announce")]
    pub announce: bool,
    /// The comment announced (the "Remark" of NET VIEW): at most 43
    /// printable characters of the code page.
    #[serde(default = "default_browse_comment")]
    pub comment: String,
}

/// Longest `[browse] comment`, in characters.
pub const MAX_BROWSE_COMMENT: usize = netsend_wire::browse::MAX_SENT_COMMENT;

const fn default_announce() -> bool {
    true
}

fn default_browse_comment() -> String {
    "netsend messenger".into()
}

impl Default for BrowseConfig {
    fn default() -> Self {
        Self {
            announce: default_announce(),
            comment: default_browse_comment(),
        }
    }
}

impl AlerterConfig {
    /// Whether the Alerter runs: `enabled`, else whether there are names.
    pub fn is_on(&self) -> bool {
        self.enabled.unwrap_or(!self.names.is_empty())
    }

    /// The groups that may raise alerts (`groups`, else `broadcast_group`).
    pub fn raising_groups(&self, broadcast_group: &str) -> Vec<String> {
        self.groups
            .clone()
            .unwrap_or_else(|| vec![broadcast_group.to_owned()])
    }

    fn validate(&self) -> Result<(), String> {
        if self.enabled == Some(true) && self.names.is_empty() {
            return Err("enabled = true needs at least one of names".into());
        }
        if let Some(name) = self
            .names
            .iter()
            .find(|n| n.trim().is_empty() || n.starts_with('*') || n.starts_with('/'))
        {
            return Err(format!(
                "names: {name:?} is not an alias, user or computer name"
            ));
        }
        if !(1..=1440).contains(&self.batch_minutes) {
            return Err("batch_minutes must be 1..=1440".into());
        }
        if self.gather_secs > 600 || self.gather_secs >= self.batch_minutes * 60 {
            return Err("gather_secs must be 0..=600 and shorter than batch_minutes".into());
        }
        if !(1..=10_000).contains(&self.max_per_minute) {
            return Err("max_per_minute must be 1..=10000".into());
        }
        if let Some(disk) = &self.disk {
            disk.validate()?;
        }
        if let Some(journal) = &self.journal {
            journal.validate()?;
        }
        Ok(())
    }
}

/// `[alerter] disk`: filesystems checked periodically for free space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskWatchConfig {
    /// Mount points (or any path on the filesystem) to check.
    pub paths: Vec<PathBuf>,
    /// Alert when less than this percentage is free (to unprivileged users).
    #[serde(default = "default_min_free_percent")]
    pub min_free_percent: u8,
    /// Seconds between checks.
    #[serde(default = "default_disk_interval")]
    pub interval_secs: u64,
}

const fn default_min_free_percent() -> u8 {
    5
}
const fn default_disk_interval() -> u64 {
    60
}

impl DiskWatchConfig {
    fn validate(&self) -> Result<(), String> {
        if self.paths.is_empty() || self.paths.iter().any(|p| !p.is_absolute()) {
            return Err("disk.paths: list at least one absolute path".into());
        }
        if !(1..=99).contains(&self.min_free_percent) {
            return Err("disk.min_free_percent must be 1..=99".into());
        }
        if !(1..=86_400).contains(&self.interval_secs) {
            return Err("disk.interval_secs must be 1..=86400".into());
        }
        Ok(())
    }
}

/// `[alerter] journal`: journal entries that raise alerts, followed with
/// `journalctl --follow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalWatchConfig {
    /// This priority and more urgent ones ("emerg" ... "debug", or 0-7).
    #[serde(default = "default_journal_priority")]
    pub priority: String,
    /// Only entries of these units (`journalctl --unit`); empty: any.
    #[serde(default)]
    pub units: Vec<String>,
    /// Only entries matching these `FIELD=value` matches (journalctl's rules:
    /// the same field ORed, different fields ANDed); empty: any.
    #[serde(default, rename = "match")]
    pub matches: Vec<String>,
}

fn default_journal_priority() -> String {
    "crit".into()
}

/// The syslog priority names, most urgent first (their index is the level).
pub const PRIORITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

impl JournalWatchConfig {
    /// The priority as a level, 0 (emerg) to 7 (debug).
    pub fn level(&self) -> Option<u8> {
        let p = self.priority.trim().to_ascii_lowercase();
        PRIORITIES
            .iter()
            .position(|name| *name == p)
            .and_then(|i| u8::try_from(i).ok())
            .or_else(|| p.parse::<u8>().ok().filter(|l| *l <= 7))
    }

    fn validate(&self) -> Result<(), String> {
        if self.level().is_none() {
            return Err(format!(
                "journal.priority {:?} is not one of {} or 0-7",
                self.priority,
                PRIORITIES.join(", ")
            ));
        }
        if let Some(unit) = self
            .units
            .iter()
            .find(|u| u.is_empty() || u.starts_with('-') || u.chars().any(char::is_control))
        {
            return Err(format!("journal.units: {unit:?} is not a unit name"));
        }
        let good_match = |m: &String| {
            m.split_once('=').is_some_and(|(field, value)| {
                !field.is_empty()
                    && field
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                    && !value.chars().any(char::is_control)
            })
        };
        if let Some(m) = self.matches.iter().find(|m| !good_match(m)) {
            return Err(format!("journal.match: {m:?} is not FIELD=value"));
        }
        Ok(())
    }
}

/// `[metrics]`: the `/metrics` endpoint for Prometheus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served over HTTP (e.g. `127.0.0.1:9139`);
    /// off when unset. Nothing on it is secret, but keep it on loopback or
    /// an administration network: it has no authentication.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

impl BrowseConfig {
    /// The comment in OEM bytes, checked: at most 43 printable characters
    /// the code page can encode.
    pub fn comment_bytes(&self, code_page: CodePage) -> Result<Vec<u8>, ConfigError> {
        let invalid = |e: String| ConfigError::Invalid("browse.comment".into(), e);
        if self.comment.chars().any(char::is_control) {
            return Err(invalid("no control characters".into()));
        }
        let bytes = code_page
            .encode(&self.comment)
            .map_err(|c| invalid(format!("{c:?} is not in the code page")))?;
        if bytes.len() > MAX_BROWSE_COMMENT {
            return Err(invalid(format!("at most {MAX_BROWSE_COMMENT} characters")));
        }
        Ok(bytes)
    }
}

/// `[display]`: showing received messages to the people they are for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayConfig {
    /// Write each message to the recipient's terminals (like write(1) and
    /// wall(1)), where `mesg y` allows it.
    #[serde(default = "default_terminals")]
    pub terminals: bool,
    /// The group owning terminal devices, kept as a supplementary group when
    /// privileges are dropped (write(1) is setgid to it); "" turns terminal
    /// output off.
    #[serde(default = "default_terminal_group")]
    pub terminal_group: String,
    /// Store-and-forward: a message for a user who had no terminal or desktop
    /// session is shown at their next login if it is at most this many hours
    /// old (0: never).
    #[serde(default = "default_pending_hours")]
    pub pending_hours: u64,
    /// Tell the netsend host a directed message came from when it was first
    /// shown and first read (`netsend status ID` there).
    #[serde(default = "default_receipts")]
    pub receipts: bool,
}

const fn default_receipts() -> bool {
    true
}

const fn default_pending_hours() -> u64 {
    netsend_control::config::DEFAULT_PENDING_HOURS
}

impl DisplayConfig {
    /// Whether messages are written to terminals.
    pub fn writes_terminals(&self) -> bool {
        self.terminals && !self.terminal_group.is_empty()
    }
}

impl Default for DisplayConfig {
    fn default() -> Self {
        Self {
            terminals: default_terminals(),
            terminal_group: default_terminal_group(),
            pending_hours: default_pending_hours(),
            receipts: default_receipts(),
        }
    }
}

const fn default_terminals() -> bool {
    true
}
fn default_terminal_group() -> String {
    "tty".into()
}

/// Where login sessions are read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionSource {
    /// systemd-logind when it answers, else utmp.
    #[default]
    Auto,
    /// systemd-logind only.
    Logind,
    /// utmp only.
    Utmp,
}

/// `[log]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log to the systemd journal (when its socket exists) instead of stderr.
    #[serde(default)]
    pub journald: bool,
    /// NET LOG: append every stored message (directed and broadcast) to the
    /// message log, one JSON object per line.
    #[serde(default)]
    pub messages: bool,
    /// The message log; default: `messages.log` in `state_dir`.
    #[serde(default)]
    pub messages_path: Option<PathBuf>,
}

/// `[queue]`: the outgoing queue (`netsend send --queue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Seconds before the first retry; the pause doubles after each failure.
    #[serde(default = "default_retry_secs")]
    pub retry_secs: u64,
    /// The longest pause between retries, in seconds.
    #[serde(default = "default_max_retry_secs")]
    pub max_retry_secs: u64,
    /// Minutes after which a queued message is given up, unless the sender
    /// says otherwise.
    #[serde(default = "default_expire_minutes")]
    pub expire_minutes: u64,
    /// Entries one user may hold in the queue, waiting or finished; their
    /// oldest finished ones make room for new ones.
    #[serde(default = "default_max_queued_per_user")]
    pub max_per_user: usize,
    /// The longest expiry a sender may ask for (`--expire`), in minutes.
    #[serde(default = "default_max_expire_minutes")]
    pub max_expire_minutes: u64,
    /// Finished entries (delivered, expired, cancelled) are deleted this
    /// many days after they finished.
    #[serde(default = "default_keep_finished_days")]
    pub keep_finished_days: u64,
}

const fn default_max_queued_per_user() -> usize {
    100
}
const fn default_max_expire_minutes() -> u64 {
    10_080
}
const fn default_keep_finished_days() -> u64 {
    7
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            retry_secs: default_retry_secs(),
            max_retry_secs: default_max_retry_secs(),
            expire_minutes: default_expire_minutes(),
            max_per_user: default_max_queued_per_user(),
            max_expire_minutes: default_max_expire_minutes(),
            keep_finished_days: default_keep_finished_days(),
        }
    }
}

/// `[sent]`: the sent archive, every message sent with its outcome and
/// receipts (`netsend sent`, `netsend status ID`), bounded by age and per
/// sending user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentConfig {
    /// Records older than this many days are deleted.
    #[serde(default = "default_sent_max_age_days")]
    pub max_age_days: u64,
    /// Records kept per sending user (the oldest go first).
    #[serde(default = "default_sent_max_per_user")]
    pub max_per_user: u64,
}

const fn default_sent_max_age_days() -> u64 {
    30
}
const fn default_sent_max_per_user() -> u64 {
    1000
}

impl Default for SentConfig {
    fn default() -> Self {
        Self {
            max_age_days: default_sent_max_age_days(),
            max_per_user: default_sent_max_per_user(),
        }
    }
}

const fn default_retry_secs() -> u64 {
    30
}
const fn default_max_retry_secs() -> u64 {
    600
}
const fn default_expire_minutes() -> u64 {
    1440
}

/// `[inbox]`: retention (0 turns a rule off).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxConfig {
    /// Messages older than this many days are deleted.
    #[serde(default)]
    pub max_age_days: u64,
    /// Each inbox keeps at most this many messages (read ones go first,
    /// then the oldest).
    #[serde(default)]
    pub max_messages: u64,
}

/// What an HTTP hook posts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookFormat {
    /// ntfy: the text as the body, a `Title` header.
    #[default]
    Ntfy,
    /// Gotify: JSON `{"title", "message", "priority"}`.
    Gotify,
}

/// One `[[hooks]]` entry: a program or a URL told about each message to an alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// The alias (any case), or `*` for every message.
    pub alias: String,
    /// A program and its arguments (no shell); `{id}` and `{peer}` are
    /// replaced where they are a whole argument (`{from}` and `{to}` are
    /// refused: the names are in `NETSEND_FROM`, `NETSEND_TO`); the text is stdin.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    /// Instead of `exec`: an HTTP(S) URL the message is POSTed to.
    #[serde(default)]
    pub url: Option<String>,
    /// What the POST holds (for `url`).
    #[serde(default)]
    pub format: HookFormat,
    /// Seconds before a program is killed or a request abandoned.
    #[serde(default = "default_hook_timeout")]
    pub timeout_secs: u64,
}

const fn default_hook_timeout() -> u64 {
    10
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// IPv4 addresses to serve; `0.0.0.0` means every non-loopback interface.
    #[serde(default = "default_bind")]
    pub bind: Vec<Ipv4Addr>,
    /// Restrict to these interface names (empty: all).
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Extra broadcast addresses, for name queries and domain broadcasts.
    #[serde(default)]
    pub broadcast: Vec<Ipv4Addr>,
    /// netsend hosts in other subnets that re-broadcast our `*` and
    /// `/DOMAIN` messages there (each must list us in its `relay_from`).
    #[serde(default)]
    pub relays: Vec<Ipv4Addr>,
    /// Networks whose hosts may use this host as a relay: their domain
    /// broadcasts, sent to us directly, are re-broadcast into our subnets.
    #[serde(default)]
    pub relay_from: Vec<String>,
    /// Name service port (UDP).
    #[serde(default = "default_name_port")]
    pub name_port: u16,
    /// Datagram service port (UDP).
    #[serde(default = "default_datagram_port")]
    pub datagram_port: u16,
    /// Session service port (TCP).
    #[serde(default = "default_session_port")]
    pub session_port: u16,
    /// Who gets node status answers (`nmblookup -A`, `nbtscan`): `on-link`
    /// (hosts on a served interface's subnet, and this host), `anyone` or `none`.
    #[serde(default, with = "status_audience_serde")]
    pub node_status: StatusAudience,
}

/// `[names]`: our names on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamesConfig {
    /// Seconds before a name another host holds is registered again; the
    /// pause doubles after each try that finds it still held.
    #[serde(default = "default_conflict_retry_secs")]
    pub conflict_retry_secs: u64,
    /// The longest such pause, in seconds.
    #[serde(default = "default_conflict_max_retry_secs")]
    pub conflict_max_retry_secs: u64,
}

impl Default for NamesConfig {
    fn default() -> Self {
        Self {
            conflict_retry_secs: default_conflict_retry_secs(),
            conflict_max_retry_secs: default_conflict_max_retry_secs(),
        }
    }
}

impl NamesConfig {
    /// The registration timing for the broadcast segments.
    pub fn registration(&self) -> netsend_proto::registration::RegistrationConfig {
        let first = self.conflict_retry_secs.max(1);
        netsend_proto::registration::RegistrationConfig {
            conflict_retry: std::time::Duration::from_secs(first),
            conflict_max_retry: std::time::Duration::from_secs(
                self.conflict_max_retry_secs.max(first),
            ),
            ..Default::default()
        }
    }
}

const fn default_conflict_retry_secs() -> u64 {
    60
}
const fn default_conflict_max_retry_secs() -> u64 {
    900
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Concurrent TCP sessions.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Largest assembled message text, in bytes.
    #[serde(default = "default_max_message_len")]
    pub max_message_len: usize,
    /// Idle session timeout, in seconds.
    #[serde(default = "default_idle")]
    pub session_idle_timeout_secs: u64,
    /// Longest a multi-block message may take from its start block to its end
    /// block, in seconds; a later block gets an error reply.
    #[serde(default = "default_assembly_timeout")]
    pub assembly_timeout_secs: u64,
    /// Messages one source address may deliver per minute after its burst (0: no limit).
    #[serde(default = "default_messages_per_minute")]
    pub messages_per_minute: u32,
    /// Messages one source may deliver at once before the rate applies.
    #[serde(default = "default_message_burst")]
    pub message_burst: u32,
    /// Messages one claimed sender name may deliver per minute, from any
    /// address, after its burst (0: no limit).
    #[serde(default = "default_sender_messages_per_minute")]
    pub sender_messages_per_minute: u32,
    /// Messages one claimed sender name may deliver at once.
    #[serde(default = "default_sender_message_burst")]
    pub sender_message_burst: u32,
    /// Message aliases held at once (computer name, logged-in users and added
    /// aliases together); Windows allowed 256.
    #[serde(default = "default_max_aliases")]
    pub max_aliases: usize,
    /// Aliases one user other than root may add (`netsend name ALIAS /add`),
    /// so that no one can fill `max_aliases`.
    #[serde(default = "default_max_aliases_per_user")]
    pub max_aliases_per_user: usize,
    /// Concurrent TCP sessions from one source address.
    #[serde(default = "default_max_connections_per_source")]
    pub max_connections_per_source: usize,
    /// Messages kept per inbox (a user's, or the computer name's shared one);
    /// a full inbox refuses new messages until some are deleted (0: no quota).
    #[serde(default = "default_inbox_quota")]
    pub inbox_quota: u64,
    /// MESSNGR datagrams stored per minute from every source together,
    /// after the burst (0: no limit); their source addresses can be forged.
    #[serde(default = "default_datagrams_per_minute")]
    pub datagrams_per_minute: u32,
    /// Datagrams every source together may deliver at once.
    #[serde(default = "default_datagram_burst")]
    pub datagram_burst: u32,
    /// Node status answers per minute to one source address, after the
    /// burst (0: no limit).
    #[serde(default = "default_node_status_per_minute")]
    pub node_status_per_minute: u32,
    /// Node status answers one source address may get at once.
    #[serde(default = "default_node_status_burst")]
    pub node_status_burst: u32,
    /// `\MAILSLOT\BROWSE` frames per minute from every source together,
    /// after the burst (0: no limit); each source is also held to 30 a
    /// minute (burst 10).
    #[serde(default = "default_browse_frames_per_minute")]
    pub browse_frames_per_minute: u32,
    /// Browse frames every source together may deliver at once.
    #[serde(default = "default_browse_frame_burst")]
    pub browse_frame_burst: u32,
    /// WINS registrations, refreshes and releases per minute from one source
    /// address, after the burst (0: no limit); queries are not counted.
    #[serde(default = "default_wins_requests_per_minute")]
    pub wins_requests_per_minute: u32,
    /// WINS registrations, refreshes and releases one source may send at once.
    #[serde(default = "default_wins_request_burst")]
    pub wins_request_burst: u32,
    /// WINS registrations, refreshes and releases a second from every source
    /// together, also their burst (0: no limit).
    #[serde(default = "default_wins_writes_per_second")]
    pub wins_writes_per_second: u32,
    /// Longest one outbound delivery may take, in seconds: resolution,
    /// connection, session and every block together; session keep-alives do
    /// not extend it.
    #[serde(default = "default_send_timeout")]
    pub send_timeout_secs: u64,
}

/// `[remote]`: the channel on which other hosts' administrators run calls
/// here, and the port this host's clients call other hosts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Accept remote calls (only from the keys listed below).
    #[serde(default)]
    pub listen: bool,
    /// The TCP port of the channel, here and on the hosts we call.
    #[serde(default = "default_remote_port")]
    pub port: u16,
    /// The service's private key (created, mode 0600, on first start);
    /// default: `remote.key` in `state_dir`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Public keys (base64, as `netsend remote key` prints them) of the
    /// principals in this host's Administrators group.
    #[serde(default)]
    pub administrators: Vec<String>,
    /// Public keys of the principals in this host's Server Operators group.
    #[serde(default)]
    pub server_operators: Vec<String>,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            listen: false,
            port: default_remote_port(),
            key_file: None,
            administrators: Vec::new(),
            server_operators: Vec::new(),
        }
    }
}

impl RemoteConfig {
    /// The keys allowed to run calls here, each with its group's name.
    pub fn principals(&self) -> Result<Vec<([u8; 32], &'static str)>, ConfigError> {
        let mut keys = Vec::new();
        for (list, group, key) in [
            (
                &self.administrators,
                "administrators",
                "remote.administrators",
            ),
            (
                &self.server_operators,
                "server_operators",
                "remote.server_operators",
            ),
        ] {
            for text in list {
                let k = netsend_control::remote::parse_public_key(text)
                    .map_err(|e| ConfigError::Invalid(key.into(), e.to_string()))?;
                keys.push((k, group));
            }
        }
        Ok(keys)
    }
}

/// `[trust]`: verified senders. Directed messages between netsend hosts go
/// over the remote channel with the sending service's key; the receiver
/// maps that key to a host with the pins in `file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// The pinned hosts, `HOST KEY` lines (like ssh's known_hosts); default:
    /// `trusted_hosts` in `state_dir`.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Pin a host's key when it first delivers a verified message (a host
    /// whose pinned key changes is refused either way).
    #[serde(default = "default_true")]
    pub pin_new: bool,
    /// Send directed messages over the remote channel when the recipient's
    /// host answers on its remote port, else (and to Samba or Windows) by SMB.
    #[serde(default = "default_true")]
    pub verified_send: bool,
    /// Claimed sender names (globs, `*` and `?`, any case) whose unverified
    /// messages are refused.
    #[serde(default)]
    pub require_verified_from: Vec<String>,
}

const fn default_true() -> bool {
    true
}

impl TrustConfig {
    /// The trust file: `file`, else `trusted_hosts` in `state_dir`.
    pub fn file_in(&self, state_dir: &Path) -> PathBuf {
        self.file
            .clone()
            .unwrap_or_else(|| state_dir.join("trusted_hosts"))
    }
}

impl Default for TrustConfig {
    fn default() -> Self {
        Self {
            file: None,
            pin_new: true,
            verified_send: true,
            require_verified_from: Vec::new(),
        }
    }
}

/// `[filter]`: allow and deny lists, checked before the rate limits. A deny
/// entry always wins; a non-empty allow list admits only what it names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Networks (`192.0.2.0/24`) or addresses that may send; empty: all.
    #[serde(default)]
    pub allow_networks: Vec<String>,
    /// Networks or addresses whose connections and datagrams are dropped.
    #[serde(default)]
    pub deny_networks: Vec<String>,
    /// Sender-name patterns (`*`, `?` wildcards) that may send; empty: all.
    #[serde(default)]
    pub allow_senders: Vec<String>,
    /// Sender-name patterns whose messages are refused.
    #[serde(default)]
    pub deny_senders: Vec<String>,
}

impl FilterConfig {
    /// The lists, parsed.
    pub fn access_list(&self) -> Result<AccessList, ConfigError> {
        let nets = |key: &str, v: &[String]| {
            v.iter()
                .map(|s| parse_network(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::Invalid(key.to_owned(), e.to_string()))
        };
        let names = |key: &str, v: &[String]| {
            v.iter()
                .map(|s| s.parse::<NamePattern>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::Invalid(key.to_owned(), e.to_string()))
        };
        Ok(AccessList {
            allow_networks: nets("filter.allow_networks", &self.allow_networks)?,
            deny_networks: nets("filter.deny_networks", &self.deny_networks)?,
            allow_senders: names("filter.allow_senders", &self.allow_senders)?,
            deny_senders: names("filter.deny_senders", &self.deny_senders)?,
        })
    }
}

/// One `[[static_names]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticName {
    /// The NetBIOS name (without suffix).
    pub name: String,
    /// `IP` or `IP:PORT` (the port of its session service).
    pub address: String,
}

impl StaticName {
    /// The session address, with `default_port` when none is given.
    pub fn socket_addr(&self, default_port: u16) -> Result<SocketAddr, String> {
        netsend_control::config::socket_addr(&self.address, default_port)
            .ok_or_else(|| format!("static name {}: bad address {:?}", self.name, self.address))
    }
}

/// `[wins]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WinsConfig {
    /// The WINS server's address.
    pub server: Ipv4Addr,
}

/// `[wins_server]`: answer registrations, refreshes, releases and queries
/// of other hosts as the site's NetBIOS name server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WinsServerConfig {
    /// Whether this service is a WINS server.
    #[serde(default)]
    pub enabled: bool,
    /// Shortest TTL granted, seconds (nmbd's `min wins ttl`).
    #[serde(default = "default_wins_min_ttl")]
    pub min_ttl_secs: u32,
    /// Longest TTL granted, seconds (nmbd's `max wins ttl`).
    #[serde(default = "default_wins_max_ttl")]
    pub max_ttl_secs: u32,
    /// Most names the table holds.
    #[serde(default = "default_wins_max_names")]
    pub max_names: usize,
    /// Most names one address may hold.
    #[serde(default = "default_wins_max_per_address")]
    pub max_names_per_address: usize,
    /// Most members of a group name.
    #[serde(default = "default_wins_max_group_members")]
    pub max_group_members: usize,
}

const fn default_wins_min_ttl() -> u32 {
    21_600
}
const fn default_wins_max_ttl() -> u32 {
    518_400
}
const fn default_wins_max_names() -> usize {
    10_000
}
const fn default_wins_max_per_address() -> usize {
    256
}
const fn default_wins_max_group_members() -> usize {
    25
}

impl Default for WinsServerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            min_ttl_secs: default_wins_min_ttl(),
            max_ttl_secs: default_wins_max_ttl(),
            max_names: default_wins_max_names(),
            max_names_per_address: default_wins_max_per_address(),
            max_group_members: default_wins_max_group_members(),
        }
    }
}

impl WinsServerConfig {
    fn validate(&self) -> Result<(), String> {
        if !(60..=self.max_ttl_secs).contains(&self.min_ttl_secs) {
            return Err("min_ttl_secs must be at least 60 and at most max_ttl_secs".into());
        }
        if self.max_ttl_secs > 31_536_000 {
            return Err("max_ttl_secs must be at most a year (31536000)".into());
        }
        if !(1..=1_000_000).contains(&self.max_names) {
            return Err("max_names must be 1..=1000000".into());
        }
        if !(1..=self.max_names).contains(&self.max_names_per_address) {
            return Err("max_names_per_address must be 1..=max_names".into());
        }
        if !(1..=64).contains(&self.max_group_members) {
            return Err("max_group_members must be 1..=64".into());
        }
        Ok(())
    }

    /// The server's rules with these bounds.
    pub fn server(&self) -> netsend_proto::wins_server::WinsServerConfig {
        netsend_proto::wins_server::WinsServerConfig {
            min_ttl: self.min_ttl_secs,
            max_ttl: self.max_ttl_secs,
            max_names: self.max_names,
            max_per_address: self.max_names_per_address,
            max_group_members: self.max_group_members,
            ..Default::default()
        }
    }
}

impl HookConfig {
    fn validate(&self) -> Result<(), String> {
        let alias = &self.alias;
        if alias.trim().is_empty() {
            return Err("alias must be an alias or \"*\"".into());
        }
        match (&self.exec, &self.url) {
            (Some(argv), None) if argv.first().is_some_and(|p| !p.is_empty()) => {
                netsend_proto::hooks::check_argv(argv)
                    .map_err(|e| format!("hook for {alias}: {e}"))?;
            }
            (Some(_), None) => return Err(format!("hook for {alias}: exec needs a program")),
            (None, Some(url)) if url.starts_with("http://") || url.starts_with("https://") => {}
            (None, Some(url)) => {
                return Err(format!("hook for {alias}: url {url:?} is not http(s)"))
            }
            _ => {
                return Err(format!(
                    "hook for {alias}: give exactly one of exec and url"
                ))
            }
        }
        if !(1..=600).contains(&self.timeout_secs) {
            return Err(format!("hook for {alias}: timeout_secs must be 1..=600"));
        }
        Ok(())
    }
}

fn default_workgroup() -> String {
    "WORKGROUP".into()
}
fn default_state_dir() -> PathBuf {
    "/var/lib/netsend".into()
}
fn default_control_socket() -> PathBuf {
    netsend_control::config::DEFAULT_CONTROL_SOCKET.into()
}
fn default_user() -> String {
    "netsend".into()
}
fn default_broadcast_group() -> String {
    "netsend-broadcast".into()
}
fn default_utmp_path() -> PathBuf {
    "/var/run/utmp".into()
}
fn default_bind() -> Vec<Ipv4Addr> {
    vec![Ipv4Addr::UNSPECIFIED]
}
const fn default_name_port() -> u16 {
    137
}
const fn default_datagram_port() -> u16 {
    138
}
const fn default_session_port() -> u16 {
    139
}
const fn default_max_connections() -> usize {
    256
}
const fn default_max_message_len() -> usize {
    4096
}
const fn default_idle() -> u64 {
    30
}
const fn default_remote_port() -> u16 {
    netsend_control::config::DEFAULT_REMOTE_PORT
}
const fn default_assembly_timeout() -> u64 {
    60
}
const fn default_messages_per_minute() -> u32 {
    600
}
const fn default_message_burst() -> u32 {
    60
}
const fn default_sender_messages_per_minute() -> u32 {
    120
}
const fn default_sender_message_burst() -> u32 {
    30
}
/// Default for the most aliases the table holds (Windows allowed 256 per LANA);
/// `limits.max_aliases` changes it.
pub const MAX_ALIASES: usize = 256;

/// Default for the most aliases one user other than root may add;
/// `limits.max_aliases_per_user` changes it.
pub const MAX_ALIASES_PER_USER: usize = 16;

const fn default_max_aliases() -> usize {
    MAX_ALIASES
}
const fn default_max_aliases_per_user() -> usize {
    MAX_ALIASES_PER_USER
}
const fn default_max_connections_per_source() -> usize {
    32
}
const fn default_inbox_quota() -> u64 {
    10_000
}
const fn default_datagrams_per_minute() -> u32 {
    120
}
const fn default_datagram_burst() -> u32 {
    30
}
const fn default_node_status_per_minute() -> u32 {
    30
}
const fn default_node_status_burst() -> u32 {
    10
}
const fn default_browse_frames_per_minute() -> u32 {
    600
}
const fn default_browse_frame_burst() -> u32 {
    200
}
const fn default_wins_requests_per_minute() -> u32 {
    120
}
const fn default_wins_request_burst() -> u32 {
    60
}
const fn default_wins_writes_per_second() -> u32 {
    100
}
const fn default_send_timeout() -> u64 {
    15
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            interfaces: Vec::new(),
            broadcast: Vec::new(),
            relays: Vec::new(),
            relay_from: Vec::new(),
            name_port: default_name_port(),
            datagram_port: default_datagram_port(),
            session_port: default_session_port(),
            node_status: StatusAudience::default(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            max_message_len: default_max_message_len(),
            session_idle_timeout_secs: default_idle(),
            assembly_timeout_secs: default_assembly_timeout(),
            messages_per_minute: default_messages_per_minute(),
            message_burst: default_message_burst(),
            sender_messages_per_minute: default_sender_messages_per_minute(),
            sender_message_burst: default_sender_message_burst(),
            max_aliases: default_max_aliases(),
            max_aliases_per_user: default_max_aliases_per_user(),
            max_connections_per_source: default_max_connections_per_source(),
            inbox_quota: default_inbox_quota(),
            datagrams_per_minute: default_datagrams_per_minute(),
            datagram_burst: default_datagram_burst(),
            node_status_per_minute: default_node_status_per_minute(),
            node_status_burst: default_node_status_burst(),
            browse_frames_per_minute: default_browse_frames_per_minute(),
            browse_frame_burst: default_browse_frame_burst(),
            wins_requests_per_minute: default_wins_requests_per_minute(),
            wins_request_burst: default_wins_request_burst(),
            wins_writes_per_second: default_wins_writes_per_second(),
            send_timeout_secs: default_send_timeout(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            computer_name: default_computer_name(),
            workgroup: default_workgroup(),
            code_page: CodePage::default(),
            state_dir: default_state_dir(),
            control_socket: default_control_socket(),
            user: default_user(),
            broadcast_group: default_broadcast_group(),
            sessions: SessionSource::Auto,
            utmp_path: default_utmp_path(),
            samba_config: None,
            network: NetworkConfig::default(),
            limits: LimitsConfig::default(),
            filter: FilterConfig::default(),
            remote: RemoteConfig::default(),
            trust: TrustConfig::default(),
            static_names: Vec::new(),
            wins: None,
            wins_server: WinsServerConfig::default(),
            display: DisplayConfig::default(),
            log: LogConfig::default(),
            inbox: InboxConfig::default(),
            queue: QueueConfig::default(),
            names: NamesConfig::default(),
            sent: SentConfig::default(),
            hooks: Vec::new(),
            metrics: MetricsConfig::default(),
            alerter: AlerterConfig::default(),
            browse: BrowseConfig::default(),
            gateway: None,
        }
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The TOML is malformed or has unknown keys.
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
    /// A value is not acceptable.
    #[error("{0}: {1}")]
    Invalid(String, String),
}

impl Config {
    /// Reads `path` (None: the defaults) and validates it.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let config = match path {
            None => Self::default(),
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.to_owned(), e))?;
                toml::from_str(&text)
                    .map_err(|e| ConfigError::Parse(p.to_owned(), e.to_string()))?
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every value (done by [`Self::load`]; again before binding, for a
    /// configuration built in code).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, e: String| ConfigError::Invalid(key.to_owned(), e);
        NetbiosName::with_code_page(&self.computer_name, 0, self.code_page)
            .map_err(|e| invalid("computer_name", e.to_string()))?;
        NetbiosName::with_code_page(&self.workgroup, 0, self.code_page)
            .map_err(|e| invalid("workgroup", e.to_string()))?;
        if self.network.bind.is_empty() {
            return Err(invalid("network.bind", "list at least one address".into()));
        }
        for s in &self.static_names {
            NetbiosName::with_code_page(&s.name, 3, self.code_page)
                .map_err(|e| invalid("static_names.name", e.to_string()))?;
            s.socket_addr(self.network.session_port)
                .map_err(|e| invalid("static_names.address", e))?;
        }
        if self.limits.max_message_len == 0 || self.limits.max_message_len > MAX_MESSAGE_LEN {
            return Err(invalid(
                "limits.max_message_len",
                format!("must be 1..={MAX_MESSAGE_LEN}"),
            ));
        }
        self.relay_networks()?;
        self.remote.principals()?;
        if let Some(p) = self
            .trust
            .require_verified_from
            .iter()
            .find(|p| p.is_empty())
        {
            return Err(invalid(
                "trust.require_verified_from",
                format!("{p:?}: an empty pattern matches nothing; remove it"),
            ));
        }
        if self.limits.wins_requests_per_minute > 0 && self.limits.wins_request_burst == 0 {
            return Err(invalid(
                "limits.wins_request_burst",
                "must be at least 1 while wins_requests_per_minute limits requests".into(),
            ));
        }
        if self.limits.wins_writes_per_second > 1_000_000 {
            return Err(invalid(
                "limits.wins_writes_per_second",
                "must be 0..=1000000".into(),
            ));
        }
        if !(2..=4096).contains(&self.limits.max_aliases) {
            return Err(invalid("limits.max_aliases", "must be 2..=4096".into()));
        }
        if !(1..=4096).contains(&self.limits.max_aliases_per_user) {
            return Err(invalid(
                "limits.max_aliases_per_user",
                "must be 1..=4096".into(),
            ));
        }
        self.filter.access_list()?;
        let q = &self.queue;
        if q.max_expire_minutes == 0 {
            return Err(invalid(
                "queue.max_expire_minutes",
                "must be 1 or more".into(),
            ));
        }
        if !(1..=q.max_expire_minutes).contains(&q.expire_minutes) {
            return Err(invalid(
                "queue.expire_minutes",
                "must be 1..=queue.max_expire_minutes".into(),
            ));
        }
        if q.keep_finished_days == 0 {
            return Err(invalid(
                "queue.keep_finished_days",
                "must be 1 or more".into(),
            ));
        }
        if self.sent.max_age_days == 0 || self.sent.max_per_user == 0 {
            return Err(invalid(
                "sent",
                "max_age_days and max_per_user must be 1 or more".into(),
            ));
        }
        for hook in &self.hooks {
            hook.validate().map_err(|e| invalid("hooks", e))?;
        }
        self.alerter.validate().map_err(|e| invalid("alerter", e))?;
        self.wins_server
            .validate()
            .map_err(|e| invalid("wins_server", e))?;
        for name in &self.alerter.names {
            NetbiosName::with_code_page(name, 3, self.code_page)
                .map_err(|e| invalid("alerter.names", e.to_string()))?;
        }
        self.browse.comment_bytes(self.code_page)?;
        if let Some(gateway) = &self.gateway {
            gateway.validate()?;
        }
        Ok(())
    }

    /// `network.relay_from`, parsed.
    pub fn relay_networks(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.network
            .relay_from
            .iter()
            .map(|s| parse_network(s))
            .collect::<Result<_, _>>()
            .map_err(|e| ConfigError::Invalid("network.relay_from".into(), e.to_string()))
    }

    /// The anti-spam policy this configuration asks for.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        Ok(Policy::new(
            self.filter.access_list()?,
            self.policy_limits(),
        ))
    }

    /// The anti-spam policy's rate limits and node status audience.
    pub fn policy_limits(&self) -> Limits {
        let l = &self.limits;
        Limits {
            source_per_minute: l.messages_per_minute,
            source_burst: l.message_burst,
            sender_per_minute: l.sender_messages_per_minute,
            sender_burst: l.sender_message_burst,
            datagram_per_minute: l.datagrams_per_minute,
            datagram_burst: l.datagram_burst,
            status_audience: self.network.node_status,
            status_per_minute: l.node_status_per_minute,
            status_burst: l.node_status_burst,
            browse_per_minute: l.browse_frames_per_minute,
            browse_burst: l.browse_frame_burst,
            wins_per_minute: l.wins_requests_per_minute,
            wins_burst: l.wins_request_burst,
            wins_writes_per_second: l.wins_writes_per_second,
        }
    }
}

/// A value a configuration reload replaces (the configuration itself, the
/// delivery channels built from it): each reader takes the one in force
/// when it starts its work and keeps it to the end, so a reload never
/// changes the rules under a message half handled. Cheap to clone.
#[derive(Debug)]
pub struct Live<T>(std::sync::Arc<std::sync::RwLock<std::sync::Arc<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Live<T> {
    /// Starts with `value` in force.
    pub fn new(value: T) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(
            std::sync::Arc::new(value),
        )))
    }

    /// The value in force now.
    pub fn get(&self) -> std::sync::Arc<T> {
        self.0.read().expect("live value lock").clone()
    }

    /// Puts `value` in force for every reader that starts after this.
    pub fn set(&self, value: T) {
        *self.0.write().expect("live value lock") = std::sync::Arc::new(value);
    }
}

mod status_audience_serde {
    use netsend_proto::policy::StatusAudience;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(a: &StatusAudience, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<StatusAudience, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

mod code_page_serde {
    use netsend_wire::CodePage;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(cp: &CodePage, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&cp.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CodePage, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.workgroup, "WORKGROUP");
        assert_eq!(c.network.session_port, 139);
        assert_eq!(c.network.bind, [Ipv4Addr::UNSPECIFIED]);
        assert_eq!(c.limits.max_message_len, 4096);
        assert!(c.computer_name.len() <= 15);
        assert!(c.display.terminals && c.display.terminal_group == "tty");
        assert!(c.display.writes_terminals());
    }

    /// README's Configuration block says "Defaults shown": apart from the
    /// example-only entries, loading it must give exactly the defaults.
    #[test]
    fn browse_comment_is_checked() {
        let mut config = Config::default();
        assert_eq!(
            config.browse.comment_bytes(config.code_page).unwrap(),
            b"netsend messenger"
        );
        for (comment, ok) in [
            ("x".repeat(43), true),
            ("x".repeat(44), false),
            ("Grüße".into(), true),
            ("bell\u{7}".into(), false),
            ("€".into(), false),
        ] {
            config.browse.comment = comment.clone();
            assert_eq!(config.validate().is_ok(), ok, "{comment:?}");
        }
    }

    #[test]
    fn wins_request_limits_are_checked() {
        let mut config = Config::default();
        let policy = config.policy_limits();
        assert_eq!(
            (
                policy.wins_per_minute,
                policy.wins_burst,
                policy.wins_writes_per_second
            ),
            (120, 60, 100)
        );
        config.limits.wins_request_burst = 0;
        assert!(config.validate().is_err(), "a limit with no burst");
        config.limits.wins_requests_per_minute = 0;
        assert!(config.validate().is_ok(), "no limit needs no burst");
        config.limits.wins_writes_per_second = 1_000_001;
        assert!(config.validate().is_err());
    }

    #[test]
    fn readme_configuration_block_shows_the_defaults() {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
                .unwrap();
        let block = readme
            .split("## Configuration")
            .nth(1)
            .and_then(|s| s.split("```toml").nth(1))
            .and_then(|s| s.split("```").next())
            .unwrap();
        // Tables that are examples, not defaults (none of them is set by default).
        let examples = ["[[static_names]]", "[wins]", "[[hooks]]", "[gateway]"];
        let mut skipping = false;
        let kept: String = block
            .lines()
            .filter(|line| {
                if line.starts_with('[') {
                    skipping = examples.iter().any(|e| line.starts_with(e));
                }
                !skipping
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("readme.toml");
        std::fs::write(&path, kept).unwrap();
        let mut shown = Config::load(Some(&path)).unwrap();
        let defaults = Config::default();
        // `[gateway]` is off by default; its table shows its keys' defaults.
        let gateway: String = block
            .split("\n[gateway]")
            .nth(1)
            .and_then(|s| s.split("\n[").next())
            .unwrap()
            .to_owned();
        let gateway: GatewayConfig = toml::from_str(&gateway).unwrap();
        let minimal: GatewayConfig = toml::from_str(&format!(
            "site = {:?}\nnats = {:?}",
            gateway.site, gateway.nats
        ))
        .unwrap();
        assert_eq!(gateway, minimal);
        // Values that README gives as examples of what may be set.
        assert_eq!(shown.computer_name, "HOST");
        shown.computer_name.clone_from(&defaults.computer_name);
        assert!(defaults.samba_config.is_none() && shown.samba_config.is_some());
        shown.samba_config = None;
        assert_eq!(
            shown.remote.key_file.take(),
            Some(defaults.state_dir.join("remote.key"))
        );
        assert_eq!(
            shown.trust.file.take(),
            Some(defaults.state_dir.join("trusted_hosts"))
        );
        assert_eq!(
            shown.log.messages_path.take(),
            Some(defaults.state_dir.join("messages.log"))
        );
        assert_eq!(shown, defaults);
    }

    #[test]
    fn the_gateway_is_off_by_default_and_its_keys_are_checked() {
        let parse = |text: &str| -> Result<Config, ConfigError> {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("c.toml");
            std::fs::write(&p, text).unwrap();
            let c = Config::load(Some(&p))?;
            c.validate()?;
            Ok(c)
        };
        assert!(parse("").unwrap().gateway.is_none());
        let c = parse(
            "[gateway]\nsite = \"north\"\nnats = [\"nats://192.0.2.5:4222\"]\nmode = \"direct\"\n",
        )
        .unwrap();
        let g = c.gateway.unwrap();
        assert_eq!(g.site_name().unwrap().as_str(), "NORTH");
        assert_eq!(g.mode, GatewayMode::Direct);
        assert_eq!((g.replicas, g.stream.as_str()), (3, "NETSEND"));
        let bad = |extra: &str, key: &str| {
            let text = format!("[gateway]\n{extra}");
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        };
        bad("site = \"no.rth\"\nnats = [\"nats://a\"]", "gateway.site");
        bad("site = \"\"\nnats = [\"nats://a\"]", "gateway.site");
        bad("site = \"N\"\nnats = []", "gateway.nats");
        bad(
            "site = \"N\"\nnats = [\"nats://a\"]\nreplicas = 0",
            "gateway.replicas",
        );
        bad(
            "site = \"N\"\nnats = [\"nats://a\"]\nreplicas = 6",
            "gateway.replicas",
        );
        bad(
            "site = \"N\"\nnats = [\"nats://a\"]\nstream = \"a.b\"",
            "gateway.stream",
        );
        bad(
            "site = \"N\"\nnats = [\"nats://a\"]\ntls_cert = \"/c\"",
            "gateway.tls_cert",
        );
        bad(
            "site = \"N\"\nnats = [\"nats://a\"]\nmode = \"relay\"",
            "mode",
        );
        bad(
            "site = \"N\"\nnats = [\"nats://a\"]\nuser = \"north\"",
            "gateway.user",
        );
        bad(
            "site = \"N\"\nnats = [\"nats://a\"]\nuser = \"north\"\npassword = \"p\"\ntoken = \"t\"",
            "one of credentials, user/password or token",
        );
        // The files must be there at start.
        let files = tempfile::tempdir().unwrap();
        let there = files.path().join("ca.pem");
        std::fs::write(&there, "pem").unwrap();
        let missing = files.path().join("missing.pem");
        for key in ["credentials", "tls_ca", "tls_cert", "tls_key"] {
            let other = match key {
                "tls_cert" => format!("tls_key = {there:?}\n"),
                "tls_key" => format!("tls_cert = {there:?}\n"),
                _ => String::new(),
            };
            let head = format!("site = \"N\"\nnats = [\"nats://a\"]\n{other}");
            bad(
                &format!("{head}{key} = {missing:?}"),
                &format!("gateway.{key}"),
            );
            parse(&format!("[gateway]\n{head}{key} = {there:?}")).unwrap();
        }
    }

    #[test]
    fn the_alerter_is_on_with_names_and_its_watches_are_checked() {
        let parse = |text: &str| -> Result<Config, ConfigError> {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("c.toml");
            std::fs::write(&p, text).unwrap();
            let c = Config::load(Some(&p))?;
            c.validate()?;
            Ok(c)
        };
        let off = parse("").unwrap();
        assert!(!off.alerter.is_on());
        assert_eq!(
            off.alerter.raising_groups("netsend-broadcast"),
            ["netsend-broadcast"]
        );
        let on = parse(
            "[alerter]\nnames = [\"OPS\", \"alice\"]\ngroups = [\"adm\"]\n\
             disk = { paths = [\"/\", \"/var\"], min_free_percent = 10 }\n\
             journal = { priority = \"err\", units = [\"cron.service\"], match = [\"_UID=0\"] }\n",
        )
        .unwrap();
        assert!(on.alerter.is_on());
        assert_eq!(on.alerter.raising_groups("x"), ["adm"]);
        assert_eq!(on.alerter.disk.as_ref().unwrap().interval_secs, 60);
        assert_eq!(on.alerter.journal.as_ref().unwrap().level(), Some(3));
        assert!(!parse("[alerter]\nnames = [\"OPS\"]\nenabled = false\n")
            .unwrap()
            .alerter
            .is_on());
        for bad in [
            "[alerter]\nenabled = true\n",
            "[alerter]\nnames = [\"*\"]\n",
            "[alerter]\nnames = [\"MUCH-TOO-LONG-A-NAME\"]\n",
            "[alerter]\nnames = [\"OPS\"]\nbatch_minutes = 0\n",
            "[alerter]\nnames = [\"OPS\"]\nmax_per_minute = 0\n",
            "[alerter]\nnames = [\"OPS\"]\ndisk = { paths = [\"var\"] }\n",
            "[alerter]\nnames = [\"OPS\"]\ndisk = { paths = [\"/\"], min_free_percent = 100 }\n",
            "[alerter]\nnames = [\"OPS\"]\njournal = { priority = \"loud\" }\n",
            "[alerter]\nnames = [\"OPS\"]\njournal = { match = [\"message=x\"] }\n",
            "[alerter]\nnames = [\"OPS\"]\njournal = { units = [\"--all\"] }\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ConfigError::Invalid(..))),
                "accepted: {bad}"
            );
        }
    }

    #[test]
    fn full_file_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "computer_name = \"box\"\ncode_page = \"cp437\"\n[network]\nbind = [\"127.0.0.1\"]\nsession_port = 1139\n\
             [[static_names]]\nname = \"peer\"\naddress = \"192.0.2.11:1139\"\n[wins]\nserver = \"192.0.2.1\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.code_page, CodePage::Cp437);
        assert_eq!(
            c.static_names[0].socket_addr(139).unwrap().to_string(),
            "192.0.2.11:1139"
        );
        std::fs::write(&p, "computer_nam = \"x\"\n").unwrap();
        let e = Config::load(Some(&p)).unwrap_err().to_string();
        assert!(
            e.contains("unknown field") && e.contains("computer_nam"),
            "{e}"
        );
        std::fs::write(&p, "computer_name = \"much-too-long-for-netbios\"\n").unwrap();
        assert!(Config::load(Some(&p)).is_err());
        std::fs::write(&p, "[filter]\ndeny_networks = [\"192.0.2.0/40\"]\n").unwrap();
        let e = Config::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("filter.deny_networks"), "{e}");
        std::fs::write(
            &p,
            "[filter]\ndeny_networks = [\"192.0.2.66\", \"198.51.100.0/24\"]\ndeny_senders = [\"SPAM*\"]\n",
        )
        .unwrap();
        assert_eq!(
            Config::load(Some(&p)).unwrap().filter.deny_senders,
            ["SPAM*"]
        );
    }

    #[test]
    fn hooks_need_exactly_one_action() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&p, text).unwrap();
            Config::load(Some(&p))
        };
        let c = load("[log]\njournald = true\n[[hooks]]\nalias = \"*\"\nurl = \"http://x/y\"\nformat = \"gotify\"\n")
            .unwrap();
        assert!(c.log.journald);
        assert_eq!(c.hooks[0].format, HookFormat::Gotify);
        assert_eq!(c.hooks[0].timeout_secs, 10);
        for bad in [
            "[[hooks]]\nalias = \"A\"\n",
            "[[hooks]]\nalias = \"A\"\nexec = []\n",
            "[[hooks]]\nalias = \"A\"\nexec = [\"/bin/true\"]\nurl = \"http://x\"\n",
            "[[hooks]]\nalias = \"A\"\nurl = \"ftp://x\"\n",
            "[[hooks]]\nalias = \"A\"\nexec = [\"/bin/true\"]\ntimeout_secs = 0\n",
            "[[hooks]]\nalias = \"A\"\nexec = [\"/bin/notify\", \"{from}\"]\n",
            "[[hooks]]\nalias = \"A\"\nexec = [\"/bin/notify\", \"{to}\"]\n",
            "[[hooks]]\nalias = \"A\"\nurl = \"http://x\"\nformat = \"slack\"\n",
        ] {
            assert!(load(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn packaged_config_loads_and_matches_the_unit() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging");
        let c = Config::load(Some(&dir.join("netsend.toml"))).unwrap();
        // The unit starts as user netsend: there is no root to drop from.
        assert_eq!(c.user, "");
        let unit = std::fs::read_to_string(dir.join("netsend.service")).unwrap();
        assert!(unit.contains("StateDirectory=netsend\n"));
        assert_eq!(c.state_dir, Path::new("/var/lib/netsend"));
        assert!(unit.contains("RuntimeDirectory=netsend\n"));
        assert_eq!(c.control_socket, Path::new("/run/netsend/control.sock"));
    }

    /// The client's view (`netsend_control::config::ClientConfig`, which
    /// `libnetapi32` reads) and the service agree on every key the client
    /// reads, for the defaults and for a file that sets them.
    #[test]
    fn clients_read_the_keys_the_service_uses() {
        use netsend_control::config::ClientConfig;
        let agree = |text: &str| {
            let full: Config = toml::from_str(text).unwrap();
            let client = ClientConfig::parse(text).unwrap();
            assert_eq!(client.control_socket, full.control_socket, "{text}");
            assert_eq!(client.remote.port, full.remote.port, "{text}");
            assert_eq!(client.computer_name, full.computer_name, "{text}");
            assert_eq!(
                client.display.pending_hours, full.display.pending_hours,
                "{text}"
            );
            let client_names: Vec<_> = client
                .static_names
                .iter()
                .map(|s| (&s.name, &s.address))
                .collect();
            let full_names: Vec<_> = full
                .static_names
                .iter()
                .map(|s| (&s.name, &s.address))
                .collect();
            assert_eq!(client_names, full_names, "{text}");
            (full, client)
        };
        let (full, _) = agree("");
        assert_eq!(full, Config::default());
        assert_eq!(full.control_socket, Path::new("/run/netsend/control.sock"));
        assert_eq!(full.remote.port, 2139);
        let (full, client) = agree(
            r#"
            computer_name = "HOST"
            control_socket = "/tmp/netsend-test/control.sock"
            [remote]
            port = 4139
            listen = true
            [display]
            pending_hours = 5
            [[static_names]]
            name = "PEER"
            address = "192.0.2.9"
            "#,
        );
        assert_eq!(
            client.control_socket,
            Path::new("/tmp/netsend-test/control.sock")
        );
        assert_eq!(full.remote.port, 4139);
    }
}
