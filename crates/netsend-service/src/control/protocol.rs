//! The local control API: JSON lines over a Unix socket, used by the CLI and
//! the C ABI (`libnetapi32`).
//!
//! One request per line, one response per line. The service learns who is asking
//! from the socket's peer credentials, so an ordinary user reaches only their own
//! inbox and aliases while root reaches everything.

use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::naming::aliases::Alias;
use crate::store::StoredMessage;

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
        delivered: Vec<(String, String)>,
        /// Users who could not be reached, with the NERR code and why.
        failed: Vec<(String, u32, String)>,
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
    },
    /// Answer to [`Request::InboxList`].
    Messages {
        /// The messages, oldest first.
        messages: Vec<StoredMessage>,
        /// Whether the page was cut short by [`MAX_PAGE_BYTES`] and more
        /// follow (ask again after the last id).
        #[serde(default)]
        more: bool,
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
    SentStatus(crate::store::SentRecord),
    /// Answer to [`Request::Queue`].
    Queue {
        /// The entries, oldest first.
        entries: Vec<crate::store::Queued>,
        /// Whether more follow (ask again after the last id).
        #[serde(default)]
        more: bool,
    },
    /// Answer to [`Request::InboxDelete`].
    Deleted {
        /// Messages deleted or hidden.
        count: u64,
    },
    /// The request failed with a NERR/Win32 code.
    Error {
        /// The NERR/Win32 code.
        code: u32,
        /// Detail for people.
        detail: String,
    },
}

/// Why a client call failed before the service could answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the control socket.
    #[error("the messenger service is not running (no listener on {0})")]
    NotRunning(String),
    /// The socket failed mid-call.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The service answered something unreadable.
    #[error("unreadable answer from the service: {0}")]
    Protocol(String),
}

/// Maps a failed connect to [`ClientError::NotRunning`] when nothing listens.
fn connect_error(socket: &Path, e: std::io::Error) -> ClientError {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ClientError::NotRunning(socket.display().to_string())
        }
        _ => ClientError::Io(e),
    }
}

/// The request as one line.
fn request_line(request: &Request) -> Result<String, ClientError> {
    let mut line =
        serde_json::to_string(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push('\n');
    Ok(line)
}

/// Parses the answer line (`read` bytes long).
fn parse_answer(read: usize, answer: &str) -> Result<Response, ClientError> {
    if read == 0 {
        return Err(ClientError::Protocol("connection closed".into()));
    }
    serde_json::from_str(answer).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// Sends one request and waits for its response.
pub async fn call(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| connect_error(socket, e))?;
    let (read, mut write) = stream.into_split();
    write.write_all(request_line(request)?.as_bytes()).await?;
    let mut reader = BufReader::new(read);
    let mut answer = String::new();
    use tokio::io::AsyncReadExt as _;
    let n = (&mut reader)
        .take(MAX_LINE_LEN as u64)
        .read_line(&mut answer)
        .await?;
    parse_answer(n, &answer)
}

/// [`call`] without an async runtime, for synchronous clients such as the C
/// ABI: each read and write waits at most `timeout`.
pub fn call_blocking(
    socket: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    use std::io::{BufRead as _, Read as _};
    use std::os::fd::AsRawFd as _;
    let stream =
        std::os::unix::net::UnixStream::connect(socket).map_err(|e| connect_error(socket, e))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // MSG_NOSIGNAL: a service that went away must not raise SIGPIPE in the
    // program that loaded the C ABI, whose signal dispositions are its own.
    let line = request_line(request)?;
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        match nix::sys::socket::send(stream.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL) {
            Ok(sent) => rest = &rest[sent..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(ClientError::Io(e.into())),
        }
    }
    let mut answer = String::new();
    let n = std::io::BufReader::new(stream)
        .take(MAX_LINE_LEN as u64)
        .read_line(&mut answer)?;
    parse_answer(n, &answer)
}
