//! The data the service answers with: stored messages, aliases, the
//! outgoing queue, sent records and status facts. The service stores and
//! builds them; clients print them.

use serde::{Deserialize, Serialize};

/// How a message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// NetBIOS session + SMB message blocks (TCP 139).
    Session,
    /// `\MAILSLOT\MESSNGR` datagram (UDP 138).
    Mailslot,
    /// Delivered locally without the network.
    Local,
    /// Over the remote-call channel (Noise), from a netsend host that proved
    /// its key: a verified sender.
    Remote,
}

impl Transport {
    /// Its name, as JSON and the inbox store spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Mailslot => "mailslot",
            Self::Local => "local",
            Self::Remote => "remote",
        }
    }

    /// The transport named `s` ([`Transport::as_str`]); anything else is a
    /// session, the oldest kind.
    pub fn parse(s: &str) -> Self {
        match s {
            "mailslot" => Self::Mailslot,
            "local" => Self::Local,
            "remote" => Self::Remote,
            _ => Self::Session,
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Its id, increasing.
    pub id: i64,
    /// When it was stored, Unix milliseconds.
    pub received_at: i64,
    /// The sender's claimed name.
    pub from: String,
    /// The alias it was sent to.
    pub to: String,
    /// The owning user, if any.
    pub recipient_user: Option<String>,
    /// The peer's address.
    pub source: String,
    /// The text.
    pub text: String,
    /// How it came.
    pub transport: Transport,
    /// Whether it was a broadcast.
    pub broadcast: bool,
    /// Whether it has been read.
    pub read: bool,
    /// Receipt: when it was first shown on a terminal or desktop, Unix ms.
    #[serde(default)]
    pub shown_at: Option<i64>,
    /// Receipt: when it was first read (`netsend inbox read`), Unix ms.
    #[serde(default)]
    pub read_at: Option<i64>,
    /// The host whose pinned key delivered it (over the remote channel);
    /// `None`: unverified.
    #[serde(default)]
    pub verified_host: Option<String>,
    /// Unverified, but its sender name is one this host uses verified.
    #[serde(default)]
    pub claimed_by: Option<String>,
}

impl StoredMessage {
    /// Who vouches for the sender: `verified HOST`, `unverified`, or
    /// `unverified: claims NAME, which HOST uses verified` (sanitised).
    pub fn trust_mark(&self) -> String {
        netsend_proto::trust::mark_text(
            self.verified_host.as_deref(),
            self.claimed_by.as_deref(),
            &self.from,
        )
    }

    /// The receipt state: "read", "shown" or "new".
    pub const fn state(&self) -> &'static str {
        if self.read {
            "read"
        } else if self.shown_at.is_some() {
            "shown"
        } else {
            "new"
        }
    }
}

/// What kind of send a [`SentRecord`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentKind {
    /// To one name (`netsend send NAME`, `netsend reply`).
    #[default]
    Directed,
    /// To a domain or workgroup (`*`, `/DOMAIN`).
    Broadcast,
    /// To every user with a session here (`/USERS`).
    Users,
    /// Put in the outgoing queue (`send --queue`); its outcome is the
    /// queue entry's state.
    Queued,
    /// An away message's automatic answer.
    Automatic,
}

impl SentKind {
    /// Its name, as JSON and the store spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Directed => "directed",
            Self::Broadcast => "broadcast",
            Self::Users => "users",
            Self::Queued => "queued",
            Self::Automatic => "automatic",
        }
    }

    /// The kind named `s` ([`SentKind::as_str`]); anything else is directed.
    pub fn parse(s: &str) -> Self {
        match s {
            "broadcast" => Self::Broadcast,
            "users" => Self::Users,
            "queued" => Self::Queued,
            "automatic" => Self::Automatic,
            _ => Self::Directed,
        }
    }
}

/// Which messages an inbox listing selects beyond unread, search and ids
/// (`netsend inbox -n`, `--since`, `--from`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InboxSelection {
    /// Only messages with a smaller id (paging back from the newest).
    #[serde(default)]
    pub before_id: Option<i64>,
    /// Only messages received at this time or later, Unix ms.
    #[serde(default)]
    pub since_ms: Option<i64>,
    /// Only messages whose sender name is this, in any case.
    #[serde(default)]
    pub from: Option<String>,
    /// The page holds the newest `limit` matching messages (still in
    /// order, oldest first), not the oldest.
    #[serde(default)]
    pub newest: bool,
    /// Also count every message that matches (ids and `limit` aside), in
    /// the answer's `total`.
    #[serde(default)]
    pub count: bool,
}

/// A message this host sent (the sent archive), with its receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRecord {
    /// Its receipt id (`netsend status ID`).
    pub id: i64,
    /// When it was sent (or tried, or queued), Unix ms.
    pub sent_at: i64,
    /// The recipient name (a domain for a broadcast, `/USERS`).
    pub to: String,
    /// The sender name.
    pub from: String,
    /// The recipient host (the domain of a broadcast; empty when none was
    /// reached).
    pub address: String,
    /// When the recipient host says it was first shown (its clock).
    pub shown_at: Option<i64>,
    /// When the recipient host says it was first read (its clock).
    pub read_at: Option<i64>,
    /// The Unix user who sent it (root sees everyone's).
    #[serde(default)]
    pub owner: String,
    /// The text as sent (empty for records older than the archive).
    #[serde(default)]
    pub text: String,
    /// What kind of send it was.
    #[serde(default)]
    pub kind: SentKind,
    /// What became of it: `delivered`, `failed: ...`, `2 datagram(s)`,
    /// `3 of 4 reached`, or a queue entry's state (`queued`, `delivered`,
    /// `expired`, `cancelled`).
    #[serde(default)]
    pub outcome: String,
}

/// A user's away message (`netsend away`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwayState {
    /// The user.
    pub user: String,
    /// The text of their automatic answers.
    pub text: String,
    /// Since when, Unix ms.
    pub since: i64,
}

/// One entry of a conversation (`netsend inbox --with NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "direction", rename_all = "snake_case")]
pub enum ThreadEntry {
    /// A message received from the correspondent.
    Received(StoredMessage),
    /// A message sent to them.
    Sent(SentRecord),
}

impl ThreadEntry {
    /// When it was received or sent, Unix ms.
    pub const fn at(&self) -> i64 {
        match self {
            Self::Received(m) => m.received_at,
            Self::Sent(s) => s.sent_at,
        }
    }
}

/// Where a reply went (`netsend reply`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyReport {
    /// The delivery, with the sent archive's id.
    pub sent: SendReport,
    /// Why it went to the source host's computer name rather than the
    /// sender's own name, if it did.
    #[serde(default)]
    pub fallback: Option<String>,
}

/// A message in the outgoing queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// Its queue id.
    pub id: i64,
    /// When it was queued, Unix ms.
    pub created_at: i64,
    /// The Unix user who queued it.
    pub owner: String,
    /// The recipient name.
    pub to: String,
    /// The sender name.
    pub from: String,
    /// The text.
    pub text: String,
    /// When it is given up, Unix ms.
    pub expires_at: i64,
    /// Attempts so far (the first, made when it was queued, included).
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it is tried next, Unix ms.
    pub next_try: i64,
    /// "queued", "delivered", "expired" or "cancelled".
    pub state: String,
    /// When it was delivered, given up or cancelled.
    pub done_at: Option<i64>,
}

/// Why an alias exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasKind {
    /// The computer name: always present, never deleted.
    Computer,
    /// A logged-in user's name, added automatically.
    User,
    /// Added with `netsend name ALIAS /add`.
    Added,
}

/// One message alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    /// The alias as shown to people (upper case, no padding).
    pub name: String,
    /// Why it exists.
    pub kind: AliasKind,
    /// The Unix user whose inbox receives its messages; `None` for the computer
    /// name, whose messages every local user may read.
    pub owner: Option<String>,
}

/// An alias and where it stands on the network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasStatus {
    /// The alias.
    #[serde(flatten)]
    pub alias: Alias,
    /// "registering (broadcast)", "registered (broadcast)", "conflict (owned by IP)"
    /// or "local (no broadcast interface)".
    pub network: String,
    /// The host its messages are forwarded to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<String>,
}

/// Facts about the running service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusInfo {
    /// The computer name.
    pub computer_name: String,
    /// The workgroup.
    pub workgroup: String,
    /// The process id.
    pub pid: u32,
    /// Where the session service listens.
    pub session_addresses: Vec<String>,
    /// Where the name service listens.
    pub name_addresses: Vec<String>,
    /// Number of messages in the inbox (all users).
    pub messages: usize,
    /// Messages (and sessions) refused by the anti-spam policy since start.
    #[serde(default)]
    pub dropped: u64,
    /// The same, by reason (`denied_address`, `source_rate`, `inbox_quota`, ...).
    #[serde(default)]
    pub drops: std::collections::BTreeMap<String, u64>,
    /// Where remote calls are accepted (empty when `[remote] listen` is off).
    #[serde(default)]
    pub remote_addresses: Vec<String>,
    /// The service's public key for remote calls, for callers to pin.
    #[serde(default)]
    pub remote_key: Option<String>,
    /// Every alias with where it stands on the network.
    #[serde(default)]
    pub names: Vec<NameStatus>,
    /// Messages in the outgoing queue still waiting for delivery
    /// (`send --queue`).
    #[serde(default)]
    pub queued: u64,
    /// What the last configuration reload did.
    #[serde(default)]
    pub reload: ReloadStatus,
    /// The Alerter's counters, when it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertCounts>,
    /// Away messages in force: the caller's own (root: everyone's).
    #[serde(default)]
    pub away: Vec<AwayState>,
    /// The WINS server's table and counters, when `[wins_server]` runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wins_server: Option<Box<WinsServerStatus>>,
    /// The site gateway, when `[gateway]` is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Box<GatewayState>>,
}

/// One alias in [`StatusInfo`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NameStatus {
    /// The alias as shown to people.
    pub name: String,
    /// `registering`, `registered`, `conflict` or `local` (no broadcast
    /// interface and no WINS server).
    pub state: String,
    /// The same in words, with the scopes and recent events (as `netsend
    /// name` shows it).
    pub detail: String,
}

/// The outcome of the last configuration reload (SIGHUP).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// `none` (no reload since start), `applied` or `rejected`.
    pub state: String,
    /// When it happened, Unix milliseconds.
    #[serde(default)]
    pub at: Option<i64>,
    /// Why the new configuration was rejected (the old one stays in force).
    #[serde(default)]
    pub error: Option<String>,
    /// The keys the reload changed in the running service.
    #[serde(default)]
    pub applied: Vec<String>,
    /// Keys changed in the file that take effect only at the next restart.
    #[serde(default)]
    pub restart_needed: Vec<String>,
}

/// The outcome of a delivered send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReport {
    /// The recipient as resolved.
    pub to: String,
    /// The address the message went to.
    pub address: String,
    /// Whether it went as one 0xD0 block or as 0xD5/0xD7/0xD6.
    pub multi_block: bool,
    /// Where its receipts are kept (`netsend status ID`), when recorded.
    #[serde(default)]
    pub receipt_id: Option<i64>,
    /// Whether it went over the remote channel, so the recipient knows this
    /// host sent it (`[trust] verified_send`).
    #[serde(default)]
    pub verified: bool,
}

/// A user a `/USERS` send reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDelivery {
    /// The user.
    pub user: String,
    /// The address the message went to.
    pub address: String,
}

/// A user a `/USERS` send could not reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFailure {
    /// The user.
    pub user: String,
    /// The NERR/Win32 code of the failure.
    pub code: u32,
    /// Why, for people.
    pub detail: String,
}

/// Whether a host of the browse list runs a messenger, from its node status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessengerState {
    /// Its name table holds a unique `<03>` name.
    Yes,
    /// Its name table holds none.
    No,
    /// It did not answer the node status query.
    NoAnswer,
    /// Not asked (yet).
    Unknown,
}

/// A host of the browse list (`netsend view`, NetServerEnum).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseHost {
    /// Its name.
    pub name: String,
    /// Its comment (the Remark), as announced: not sanitised.
    pub comment: String,
    /// Its `SV_TYPE_*` bits.
    pub server_type: u32,
    /// The OS version it announced, major and minor.
    pub os_version: (u8, u8),
    /// The address it announced from.
    pub address: String,
    /// Whether it runs a messenger.
    pub messenger: MessengerState,
    /// Its `<03>` names, when known.
    #[serde(default)]
    pub messenger_names: Vec<String>,
    /// Seconds until it drops out unless it announces again.
    pub expires_in_secs: u64,
}

/// A workgroup heard in a DomainAnnouncement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseDomain {
    /// The workgroup.
    pub name: String,
    /// Its master browser ("" when none announced it).
    pub master: String,
}

/// One name of a host's node status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostName {
    /// The name, without its suffix.
    pub name: String,
    /// The suffix (0x03: a message name).
    pub suffix: u8,
    /// A group name.
    pub group: bool,
}

/// The class of an administrative alert, as NT's `ALERT_*_EVENT` names
/// spell it (upper case on the wire and in the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AlertClass {
    /// `ALERT_ADMIN_EVENT`: something an administrator must act on (a disk
    /// nearly full, a failed unit, errors in the log).
    Admin,
    /// `ALERT_USER_EVENT`: about a user's account or session.
    User,
    /// `ALERT_PRINT_EVENT`: a print job's state.
    Printing,
    /// `ALERT_ERRORLOG_EVENT`: an entry of the error log (the journal).
    Errorlog,
    /// About a message name (NT's `ALERT_MESSAGE_EVENT`, "MESSAGE", is
    /// read as this class too).
    #[serde(alias = "MESSAGE")]
    Name,
}

impl AlertClass {
    /// Every class, in the order the CLI lists them.
    pub const ALL: [Self; 5] = [
        Self::Admin,
        Self::User,
        Self::Printing,
        Self::Errorlog,
        Self::Name,
    ];

    /// Its name, upper case, as the wire and the CLI spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::User => "USER",
            Self::Printing => "PRINTING",
            Self::Errorlog => "ERRORLOG",
            Self::Name => "NAME",
        }
    }

    /// The class named `s` in any case (NT's event names: "ADMIN", "USER",
    /// "PRINTING", "ERRORLOG", and "MESSAGE" or "NAME"); `None` for any
    /// other, user-defined, class.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("MESSAGE") {
            return Some(Self::Name);
        }
        Self::ALL
            .into_iter()
            .find(|class| class.as_str().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for AlertClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An administrative alert as a program raises it (`netsend alert`,
/// `NetAlertRaise(Ex)`, the service's own watches).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AlertRequest {
    /// Its class.
    pub class: AlertClass,
    /// The service that raises it (NT's `alrt_servicename`, at most 80
    /// characters, not empty).
    pub service: String,
    /// The alert's text, already rendered (NT's texts 3000-3050 with their
    /// merge strings filled in, or the program's own words).
    pub text: String,
    /// The program that raised it, when known (shown with the alert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
}

/// What became of a raised alert ([`crate::Response::Alert`]), per alert
/// name like a `/USERS` send's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertReport {
    /// Alert names that got it, with the address it went to.
    #[serde(default)]
    pub delivered: Vec<AlertDelivery>,
    /// Alert names that could not be reached now; it waits in the outgoing
    /// queue for them (as `send --queue` does).
    #[serde(default)]
    pub queued: Vec<AlertQueued>,
    /// Alert names it could not be sent to nor queued for, with the NERR
    /// code and why.
    #[serde(default)]
    pub failed: Vec<AlertFailure>,
    /// Set when the alert was not sent on its own: batched with identical
    /// ones, or dropped by the global cap. The name lists are then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<AlertHeld>,
}

/// Why a raised alert was not sent on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum AlertHeld {
    /// An identical alert was raised within `[alerter] batch_minutes`; this
    /// one is counted and goes out in that batch's message.
    Batched {
        /// Identical alerts in the batch so far, this one included.
        count: u64,
    },
    /// More alerts than `[alerter] max_per_minute` went out in the last
    /// minute; this one was dropped and counted in `messenger status`.
    Capped {
        /// `[alerter] max_per_minute`.
        max_per_minute: u32,
    },
}

/// An alert name an alert reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDelivery {
    /// The alert name, as configured.
    pub name: String,
    /// The address the alert went to.
    pub address: String,
}

/// An alert name an alert waits in the outgoing queue for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertQueued {
    /// The alert name, as configured.
    pub name: String,
    /// The queue id (`netsend queue`).
    pub id: i64,
    /// The NERR code of the failed attempt.
    pub code: u32,
    /// Why it could not be delivered now.
    pub reason: String,
}

/// An alert name an alert could not be sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFailure {
    /// The alert name, as configured.
    pub name: String,
    /// The NERR/Win32 code of the failure.
    pub code: u32,
    /// Why, for people.
    pub detail: String,
}

/// The Alerter's counters since the service started (`messenger status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertCounts {
    /// Alerts raised (by clients and by the watches).
    pub raised: u64,
    /// Alert messages sent (one per batch, to all names).
    pub sent: u64,
    /// Alerts folded into another's message by batching.
    pub batched: u64,
    /// Alerts dropped by `[alerter] max_per_minute`.
    pub capped: u64,
}

/// The WINS server's state (`messenger status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinsServerStatus {
    /// Names answered now.
    pub names: usize,
    /// Names held, released and lapsing ones included.
    pub held: usize,
    /// Challenges of an owner in flight.
    pub challenging: usize,
    /// Its decisions since start (granted, refused, challenges, defended,
    /// released, answered, unknown).
    #[serde(flatten)]
    pub counts: netsend_proto::wins_server::Counters,
}

impl AlertCounts {
    /// Alerts that did not go out as a message of their own.
    pub const fn suppressed(&self) -> u64 {
        self.batched + self.capped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, Response};

    #[test]
    fn an_alert_request_names_its_class_in_upper_case() {
        let request = Request::Alert(AlertRequest {
            class: AlertClass::Errorlog,
            service: "backup".into(),
            text: "tape full".into(),
            program: None,
        });
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            json,
            r#"{"op":"alert","class":"ERRORLOG","service":"backup","text":"tape full"}"#
        );
        let back: Request = serde_json::from_str(
            r#"{"op":"alert","class":"MESSAGE","service":"s","text":"t","program":"p"}"#,
        )
        .unwrap();
        let Request::Alert(alert) = back else {
            panic!("not an alert: {back:?}")
        };
        assert_eq!(alert.class, AlertClass::Name);
        assert_eq!(alert.program.as_deref(), Some("p"));
        assert!(serde_json::from_str::<Request>(
            r#"{"op":"alert","class":"admin","service":"s","text":"t"}"#
        )
        .is_err());
    }

    #[test]
    fn alert_classes_parse_in_any_case() {
        for class in AlertClass::ALL {
            assert_eq!(AlertClass::parse(class.as_str()), Some(class));
            assert_eq!(
                AlertClass::parse(&class.as_str().to_lowercase()),
                Some(class)
            );
        }
        assert_eq!(AlertClass::parse("message"), Some(AlertClass::Name));
        assert_eq!(AlertClass::parse("CUSTOM"), None);
    }

    #[test]
    fn an_alert_report_round_trips() {
        let report = AlertReport {
            delivered: vec![AlertDelivery {
                name: "OPS".into(),
                address: "192.0.2.2:139".into(),
            }],
            queued: vec![AlertQueued {
                name: "ALICE".into(),
                id: 7,
                code: 2273,
                reason: "ALICE could not be found on the network".into(),
            }],
            failed: vec![AlertFailure {
                name: "BOB".into(),
                code: 87,
                detail: "bad name".into(),
            }],
            held: None,
        };
        let json = serde_json::to_string(&Response::Alert(report.clone())).unwrap();
        let Response::Alert(back) = serde_json::from_str(&json).unwrap() else {
            panic!("not an alert report: {json}")
        };
        assert_eq!(back, report);
        let held = Response::Alert(AlertReport {
            held: Some(AlertHeld::Batched { count: 3 }),
            ..AlertReport::default()
        });
        let json = serde_json::to_string(&held).unwrap();
        assert!(
            json.contains(r#""held":{"reason":"batched","count":3}"#),
            "{json}"
        );
    }
}

/// A site gateway's state (`netsend gateway status`, and `gateway` in
/// `messenger status --json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayState {
    /// This site's name.
    pub site: String,
    /// `proxy` or `direct`.
    pub mode: String,
    /// The connection to the NATS cluster.
    pub connection: GatewayConnection,
    /// The JetStream stream, when connected and it could be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<GatewayStream>,
    /// This site's durable consumers.
    #[serde(default)]
    pub consumers: Vec<GatewayConsumer>,
    /// The names of other sites known here.
    pub directory: GatewayDirectory,
    /// What went through this gateway since the service started.
    pub counters: GatewayCounters,
}

/// The connection of a gateway to its NATS cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayConnection {
    /// Whether it is connected now.
    pub connected: bool,
    /// The server connected to (`host:port`, with its server name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Unix ms since when it has been connected, or disconnected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// The last connection error, while disconnected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The JetStream stream's state, from its stream info.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayStream {
    /// Its name.
    pub name: String,
    /// Messages held.
    pub messages: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Configured replicas.
    pub replicas: usize,
    /// The Raft leader, when clustered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The other replicas.
    #[serde(default)]
    pub peers: Vec<GatewayPeer>,
}

/// One replica of the stream besides the leader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayPeer {
    /// The server name.
    pub name: String,
    /// Whether it is caught up.
    pub current: bool,
    /// Operations it lags behind.
    pub lag: u64,
}

/// One durable consumer's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayConsumer {
    /// Its durable name.
    pub name: String,
    /// Messages not yet delivered to it.
    pub num_pending: u64,
    /// Messages delivered but not yet acknowledged.
    pub num_ack_pending: usize,
    /// Messages delivered more than once.
    pub num_redelivered: usize,
}

/// The directory of names at other sites.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayDirectory {
    /// Names known, all sites together.
    pub names: usize,
    /// Names per site, by site name.
    #[serde(default)]
    pub sites: Vec<GatewaySite>,
    /// This site's names in the bucket.
    #[serde(default)]
    pub published: usize,
    /// This site's names another site held first (not published).
    #[serde(default)]
    pub conflicts: usize,
    /// Unix ms of the last sync with the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<i64>,
    /// The last failure of a sync round, until the next good one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One site's name count in [`GatewayDirectory`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewaySite {
    /// The site.
    pub site: String,
    /// Its names known here.
    pub names: usize,
}

/// Counters of a gateway since the service started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayCounters {
    /// Messages and broadcasts published to the cluster (acknowledged).
    pub published: u64,
    /// Messages delivered and broadcasts re-broadcast from the cluster.
    pub delivered: u64,
    /// Publications and deliveries that failed (and were retried or
    /// reported back).
    pub failed: u64,
    /// Broadcasts heard and waiting for the cluster to come back.
    #[serde(default)]
    pub spooled: u64,
}
