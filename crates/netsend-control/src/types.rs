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

/// A message this host sent, with its receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRecord {
    /// Its receipt id (`netsend status ID`).
    pub id: i64,
    /// When it was delivered, Unix ms.
    pub sent_at: i64,
    /// The recipient name.
    pub to: String,
    /// The sender name.
    pub from: String,
    /// The recipient host.
    pub address: String,
    /// When the recipient host says it was first shown (its clock).
    pub shown_at: Option<i64>,
    /// When the recipient host says it was first read (its clock).
    pub read_at: Option<i64>,
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
}

/// The outcome of a delivered send.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
