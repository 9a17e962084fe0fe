//! The control protocol: JSON lines over the service's Unix socket (and,
//! encrypted, over the remote-call channel).
//!
//! One [`Request`] per line, one [`Response`] per line. The service learns
//! who is asking from the socket's peer credentials, so an ordinary user
//! reaches only their own inbox and aliases while root reaches everything.
//! The JSON is internal to netsend's own programs; what people's tools read
//! is the CLI's `--json` output.

use netsend_wire::status::NetApiStatus;
use serde::{Deserialize, Serialize};

use crate::types::{
    AlertReport, AlertRequest, AliasStatus, AwayState, BrowseDomain, BrowseHost, GatewayState,
    HostName, InboxSelection, Queued, ReplyReport, SendReport, SentRecord, StatusInfo,
    StoredMessage, ThreadEntry, UserDelivery, UserFailure,
};
use crate::ClientError;

/// The largest `limits.max_message_len` the service accepts, in bytes: no
/// client sends a longer text.
pub const MAX_MESSAGE_LEN: usize = 65_536;

/// Longest response line accepted: a page of [`MAX_PAGE`] messages of the
/// largest size the inbox stores fits.
pub const MAX_LINE_LEN: usize = 8 << 20;
/// Longest request line the service reads: the largest text a client sends
/// (64 KiB of UTF-16, each unit JSON-escaped) fits; a longer line closes the
/// connection, so a client cannot make the service hold much memory.
pub const MAX_REQUEST_LEN: usize = 1 << 20;
/// Most messages in one [`Response::Messages`].
pub const MAX_PAGE: usize = 100;
/// Most bytes of entries in one [`Response::Queue`] or
/// [`Response::Messages`] page (their JSON), so a page of the longest texts
/// still fits in [`MAX_LINE_LEN`].
pub const MAX_PAGE_BYTES: usize = 4 << 20;

const fn max_page() -> usize {
    MAX_PAGE
}

/// Longest a [`Request::InboxList`] waits for a new message, in ms.
pub const MAX_WAIT_MS: u64 = 60_000;

/// A request from a local client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Service facts: names, ports, counts.
    Status,
    /// Stop the service (root or the service's own user only).
    Stop,
    /// Send a message to one name.
    Send {
        /// The recipient alias.
        to: String,
        /// The sender name to claim; default: the caller's user name.
        from: Option<String>,
        /// The message text.
        text: String,
    },
    /// Send a message to one name; if it cannot be reached now (2273, 2136),
    /// keep it in the outgoing queue and try again until it expires.
    SendQueued {
        /// The recipient alias.
        to: String,
        /// The sender name to claim; default: the caller's user name.
        from: Option<String>,
        /// The message text.
        text: String,
        /// Give up after this many minutes (default: `[queue] expire_minutes`).
        expire_minutes: Option<u64>,
    },
    /// A page of the caller's outgoing queue (root: everyone's), oldest
    /// first.
    Queue {
        /// Only entries with a larger id (the last one of the previous page).
        #[serde(default)]
        after_id: Option<i64>,
        /// At most this many (capped at [`MAX_PAGE`]).
        #[serde(default = "max_page")]
        limit: usize,
    },
    /// A message the caller sent and the receipts the recipient host returned.
    SentStatus {
        /// The receipt id printed when it was sent.
        id: i64,
    },
    /// Cancel a waiting entry of the outgoing queue.
    QueueCancel {
        /// The queue id.
        id: i64,
    },
    /// Broadcast a message to a domain or workgroup (`*`, `/DOMAIN[:NAME]`).
    Broadcast {
        /// The domain; `None`: our own workgroup.
        domain: Option<String>,
        /// The sender name to claim; default: the caller's user name.
        from: Option<String>,
        /// The message text.
        text: String,
        /// Send a text too long for one datagram as several, in order, instead
        /// of refusing it.
        #[serde(default)]
        split: bool,
    },
    /// Send to every user with a session on this host (`/USERS`).
    SendUsers {
        /// The sender name to claim; default: the caller's user name.
        from: Option<String>,
        /// The message text.
        text: String,
    },
    /// List the message aliases.
    Names,
    /// Add a message alias owned by the caller.
    NameAdd {
        /// The alias.
        name: String,
    },
    /// Delete a message alias.
    NameDel {
        /// The alias.
        name: String,
    },
    /// Forward a message alias to another host (`host` a name or an IPv4
    /// address), or cancel its forward (`host` `None`).
    NameForward {
        /// The alias.
        name: String,
        /// Where its messages go on to.
        host: Option<String>,
    },
    /// List inbox messages visible to the caller.
    InboxList {
        /// Only messages not yet read.
        unread_only: bool,
        /// Only messages with a larger id (for `--follow`).
        after_id: Option<i64>,
        /// At most this many messages (capped at [`MAX_PAGE`]).
        limit: usize,
        /// Only messages whose sender, alias or text contains this.
        #[serde(default)]
        search: Option<String>,
        /// When nothing matches, wait up to this many ms (at most
        /// [`MAX_WAIT_MS`]) for a new message that does, rather than answer
        /// at once with none: followers are told of a message as soon as it
        /// is stored, without asking again and again.
        #[serde(default)]
        wait_ms: u64,
        /// The newest messages, a sender, a time: what `netsend inbox`
        /// selects beyond the fields above.
        #[serde(flatten, default)]
        select: InboxSelection,
    },
    /// A page of the sent archive: what the caller sent (root: everyone).
    SentList {
        /// Only records with a larger id.
        #[serde(default)]
        after_id: Option<i64>,
        /// Only records with a smaller id.
        #[serde(default)]
        before_id: Option<i64>,
        /// At most this many (capped at [`MAX_PAGE`]).
        #[serde(default = "max_page")]
        limit: usize,
        /// The newest `limit` records (in order, oldest first).
        #[serde(default)]
        newest: bool,
        /// Only records whose recipient, sender or text contains this.
        #[serde(default)]
        search: Option<String>,
        /// Only records sent to this name, in any case.
        #[serde(default)]
        to: Option<String>,
        /// Only records sent at this time or later, Unix ms.
        #[serde(default)]
        since_ms: Option<i64>,
        /// Also count every matching record in `total`.
        #[serde(default)]
        count: bool,
    },
    /// The exchange with one correspondent: messages received from `with`
    /// and sent to `with`, the newest `limit` of them, in time order.
    Thread {
        /// The correspondent's name (any case).
        with: String,
        /// At most this many entries (capped at [`MAX_PAGE`]).
        #[serde(default = "max_page")]
        limit: usize,
        /// Only received messages with a smaller id (the previous page's
        /// oldest).
        #[serde(default)]
        received_before: Option<i64>,
        /// Only sent records with a smaller id.
        #[serde(default)]
        sent_before: Option<i64>,
    },
    /// Reply to a received message: to its sender at the host it came from
    /// (or, when that name is not theirs, to that host's computer name).
    Reply {
        /// The inbox id of the message replied to.
        id: i64,
        /// The reply's text.
        text: String,
    },
    /// The caller's away message, if any.
    Away,
    /// Set the caller's away message (`text`), or end it (`None`).
    AwaySet {
        /// The text of the automatic answers; `None`: back.
        text: Option<String>,
    },
    /// Record that a message was shown to its reader (display agents).
    InboxShown {
        /// The message id.
        id: i64,
    },
    /// Delete messages: the caller's own are deleted, shared ones (to the
    /// computer name, broadcasts) hidden from the caller; root deletes any.
    InboxDelete {
        /// These ids.
        #[serde(default)]
        ids: Vec<i64>,
        /// And every read message.
        #[serde(default)]
        read: bool,
    },
    /// Show one message and mark it read.
    InboxRead {
        /// The message id.
        id: i64,
    },
    /// Raise an administrative alert: the Alerter sends it to every name in
    /// `[alerter] names`, batching identical ones. Answered with
    /// [`Response::Alert`]; refused with `ERROR_ACCESS_DENIED` (5) when the
    /// caller is not root nor in `[alerter] groups`,
    /// `NERR_ServiceNotInstalled` (2184) when the Alerter is off (no names,
    /// or `enabled = false`), `ERROR_INVALID_PARAMETER` (87) for an empty or
    /// too long service name or text.
    Alert(AlertRequest),
    /// The hosts of a workgroup in the browse list (`netsend view`), with
    /// whether each runs a messenger.
    View {
        /// The workgroup; `None`: our own.
        #[serde(default)]
        domain: Option<String>,
    },
    /// The workgroups heard (`netsend view /domain`).
    ViewDomains,
    /// The site gateway's connection, stream, consumers, directory and
    /// counters (`netsend gateway status`).
    GatewayStatus,
    /// A host's message names, by node status (`netsend view \\HOST`).
    ViewHost {
        /// A name from the browse list, a NetBIOS name, or an IPv4 address.
        host: String,
    },
    /// A directed message from another netsend host, over the remote
    /// channel only (the control socket refuses it): the receiver stores it
    /// as an incoming SMB message, marked `verified HOST` by the caller's
    /// pinned key.
    Deliver {
        /// The sending host's computer name (pinned to its key on first
        /// contact).
        host: String,
        /// The sender's claimed name.
        from: String,
        /// The recipient alias.
        to: String,
        /// The message text.
        text: String,
    },
}

/// A response to one [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// Done, nothing to report.
    Ok,
    /// Answer to [`Request::Status`].
    Status(StatusInfo),
    /// Answer to [`Request::Send`].
    Sent(SendReport),
    /// Answer to [`Request::Broadcast`].
    Broadcast {
        /// The domain it went to.
        domain: String,
        /// How many datagrams were sent (per interface, per part).
        datagrams: usize,
    },
    /// Answer to [`Request::SendUsers`].
    Users {
        /// Users who got the message, with the address it went to.
        delivered: Vec<UserDelivery>,
        /// Users who could not be reached, with the NERR code and why.
        failed: Vec<UserFailure>,
    },
    /// Answer to [`Request::Names`].
    Names {
        /// The aliases with their state on the network.
        names: Vec<AliasStatus>,
        /// What happened to the caller's aliases since they last asked (an
        /// alias that went to the account of that name at its login), shown
        /// once.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notices: Vec<String>,
        /// The caller's away message, if they are away.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away: Option<AwayState>,
    },
    /// Answer to [`Request::InboxList`].
    Messages {
        /// The messages, oldest first.
        messages: Vec<StoredMessage>,
        /// Whether the page was cut short by [`MAX_PAGE_BYTES`] and more
        /// follow (ask again after the last id).
        #[serde(default)]
        more: bool,
        /// How many messages match in all, when asked (`count`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// Answer to [`Request::SentList`].
    SentList {
        /// The records, oldest first.
        records: Vec<SentRecord>,
        /// Whether more follow in the direction asked.
        #[serde(default)]
        more: bool,
        /// How many records match in all, when asked (`count`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// Answer to [`Request::Thread`].
    Thread {
        /// The entries, oldest first.
        entries: Vec<ThreadEntry>,
        /// Whether older entries exist.
        more: bool,
        /// Messages received from and sent to the correspondent in all.
        total: u64,
    },
    /// Answer to [`Request::Reply`].
    Replied(ReplyReport),
    /// Answer to [`Request::Away`] and [`Request::AwaySet`].
    Away {
        /// The away message in force; `None`: not away.
        state: Option<AwayState>,
    },
    /// Answer to [`Request::InboxRead`].
    Message(StoredMessage),
    /// Answer to [`Request::SendQueued`] when the message was queued.
    Queued {
        /// The queue id.
        id: i64,
        /// Why it could not be delivered now.
        reason: String,
    },
    /// Answer to [`Request::SentStatus`].
    SentStatus(SentRecord),
    /// Answer to [`Request::Queue`].
    Queue {
        /// The entries, oldest first.
        entries: Vec<Queued>,
        /// Whether more follow (ask again after the last id).
        #[serde(default)]
        more: bool,
    },
    /// Answer to [`Request::Alert`].
    Alert(AlertReport),
    /// Answer to [`Request::InboxDelete`].
    Deleted {
        /// Messages deleted or hidden.
        count: u64,
    },
    /// Answer to [`Request::View`].
    Hosts {
        /// The workgroup listed.
        domain: String,
        /// Its hosts, by name.
        hosts: Vec<BrowseHost>,
    },
    /// Answer to [`Request::ViewDomains`].
    Domains {
        /// The workgroups, by name.
        domains: Vec<BrowseDomain>,
    },
    /// Answer to [`Request::GatewayStatus`].
    Gateway(GatewayState),
    /// Answer to [`Request::ViewHost`].
    HostNames {
        /// The host asked.
        host: String,
        /// Its address.
        address: String,
        /// Its name table.
        names: Vec<HostName>,
    },
    /// The request failed with a NERR/Win32 code.
    Error {
        /// The NERR/Win32 code.
        code: u32,
        /// Detail for people.
        detail: String,
    },
}

impl Response {
    /// The response, or [`ClientError::Refused`] for a [`Response::Error`],
    /// so a caller handles every failure through [`ClientError::status`].
    pub fn into_result(self) -> Result<Self, ClientError> {
        match self {
            Self::Error { code, detail } => Err(ClientError::Refused {
                status: NetApiStatus(code),
                detail,
            }),
            other => Ok(other),
        }
    }
}
