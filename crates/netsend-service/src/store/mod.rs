//! The durable inbox: SQLite (WAL, `synchronous=FULL`) with one writer thread.
//!
//! [`InboxHandle::store`] returns only after the transaction holding the message
//! has committed, so the session driver can acknowledge the sender afterwards
//! and a crash never loses an acknowledged message. Messages queued at the same
//! time share one transaction (group commit) without giving up that promise.
//! Reads run on the reader threads of `readers`, never on the async
//! workers; searches use an FTS5 trigram index of sender, alias and text.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use netsend_proto::search::{Search, SearchError};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot, watch};

mod readers;

pub use netsend_control::types::{Queued, SentRecord, StoredMessage, Transport};

/// Largest text stored (a message is at most a few KiB on the wire).
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// Messages waiting for the writer before senders are made to wait.
const QUEUE_LEN: usize = 1024;
/// Most operations committed in one transaction.
const MAX_BATCH: usize = 128;

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The sender's claimed name.
    pub from: String,
    /// The alias it was sent to.
    pub to: String,
    /// The Unix user whose inbox it belongs to; `None`: every local user's.
    pub recipient_user: Option<String>,
    /// The peer's address and port.
    pub source: String,
    /// The text, UTF-8.
    pub text: String,
    /// How it came.
    pub transport: Transport,
    /// Whether it was a broadcast.
    pub broadcast: bool,
}

/// Which messages to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListFilter {
    /// `None`: every message (root); `Some(user)`: that user's and the host's.
    pub user: Option<String>,
    /// Only unread messages.
    pub unread_only: bool,
    /// Only messages with a larger id.
    pub after_id: Option<i64>,
    /// At most this many (oldest first).
    pub limit: usize,
    /// Only messages whose sender, alias or text contains this, compared
    /// without case (checked by [`Search::parse`]).
    pub search: Option<String>,
}

/// Why an inbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// SQLite failed.
    #[error("inbox database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file or its directory could not be created.
    #[error("inbox file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The text is over [`MAX_TEXT_LEN`].
    #[error("message of {0} bytes is too large for the inbox")]
    TooLarge(usize),
    /// The writer has stopped.
    #[error("the inbox is closed")]
    Closed,
    /// The recipient's inbox holds its quota of messages already.
    #[error("the inbox of {0} is full (limits.inbox_quota)")]
    QuotaExceeded(String),
    /// The sender holds the most queue entries they may, all still waiting.
    #[error("you already have {0} messages waiting in the queue (queue.max_per_user)")]
    QueueFull(u64),
    /// The search text was refused.
    #[error("{0}")]
    Search(#[from] SearchError),
    /// A read used its budget of CPU time (2 s) and was stopped.
    #[error("the inbox read used {} s of CPU time and was stopped; search for a longer text", readers::READ_BUDGET.as_secs())]
    TooSlow,
}

/// Why the writer could not carry out one operation.
#[derive(Debug, Clone)]
enum WriteFailure {
    /// The recipient's inbox is full.
    Quota,
    /// The sender's share of the queue is full of waiting entries.
    QueueFull(u64),
    /// SQLite failed; the text says how.
    Database(String),
}

type WriteResult = Result<i64, WriteFailure>;

enum WriteOp {
    Store(NewMessage, oneshot::Sender<WriteResult>),
    MarkRead(i64, Option<String>, oneshot::Sender<WriteResult>),
    MarkShown(i64, Option<String>, oneshot::Sender<WriteResult>),
    Delete(Deletion, oneshot::Sender<WriteResult>),
    Prune(Retention, oneshot::Sender<WriteResult>),
    Queue(QueueOp, oneshot::Sender<WriteResult>),
    Sent(SentOp, oneshot::Sender<WriteResult>),
}

/// A change to the record of sent messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentOp {
    /// A message was delivered to `address`.
    Record {
        /// The Unix user who sent it.
        owner: String,
        /// The recipient name.
        to: String,
        /// The sender name.
        from: String,
        /// The recipient host's IP address.
        address: String,
        /// [`netsend_proto::receipt::digest`] of the text.
        digest: String,
        /// Records kept for `owner`: older ones beyond this are deleted.
        keep: u64,
    },
    /// A receipt came from `address`: it applies to the newest matching
    /// message sent there that has no such receipt yet.
    Receipt {
        /// Where it came from.
        address: String,
        /// The receipt.
        receipt: netsend_proto::receipt::Receipt,
    },
}

/// A change to the outgoing queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOp {
    /// Queue a message after its first attempt failed with `error`.
    Add {
        /// The Unix user who queued it.
        owner: String,
        /// The recipient name.
        to: String,
        /// The sender name.
        from: String,
        /// The text.
        text: String,
        /// When to give up, Unix ms.
        expires_at: i64,
        /// When to try again, Unix ms.
        next_try: i64,
        /// Why the first attempt failed.
        error: String,
        /// Entries `owner` may hold, waiting or finished
        /// ([`netsend_proto::queue::room`]).
        max_per_owner: u64,
    },
    /// An attempt delivered it.
    Delivered {
        /// The queue entry.
        id: i64,
    },
    /// An attempt failed: try again at `next_try`, or give up (`None`).
    Failed {
        /// The queue entry.
        id: i64,
        /// Why.
        error: String,
        /// The next attempt, if any.
        next_try: Option<i64>,
    },
    /// The owner (or root, `None`) cancels a waiting entry.
    Cancel {
        /// The queue entry.
        id: i64,
        /// The caller, unless root.
        owner: Option<String>,
    },
}

/// Which messages to delete, for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// These ids (may be empty with `read`).
    pub ids: Vec<i64>,
    /// Also every read message.
    pub read: bool,
    /// `None`: root, who deletes anything. `Some(user)`: the user's own
    /// messages are deleted; a shared message (to the computer name, or a
    /// broadcast) is only hidden from that user.
    pub user: Option<String>,
}

/// What retention removes: messages older than `max_age`, and beyond
/// `max_per_inbox` in any one inbox (read ones first, then the oldest);
/// finished queue entries and sent records older than their ages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Age limit in milliseconds (0: none).
    pub max_age_ms: i64,
    /// Messages kept per inbox (0: no limit).
    pub max_per_inbox: u64,
    /// How long a finished queue entry is kept after it finished, ms (0: for ever).
    pub finished_max_age_ms: i64,
    /// How long a sent record is kept, ms (0: for ever).
    pub sent_max_age_ms: i64,
}

struct Inner {
    writer: mpsc::Sender<WriteOp>,
    /// The id of the newest message committed (0 before the first), for
    /// clients waiting on new messages.
    stored: watch::Receiver<i64>,
    readers: readers::Readers,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A cloneable handle on the inbox.
#[derive(Clone)]
pub struct InboxHandle(Arc<Inner>);

/// The inbox database.
pub struct Inbox;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    from_name TEXT NOT NULL,
    to_alias TEXT NOT NULL,
    recipient_user TEXT,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    transport TEXT NOT NULL,
    broadcast INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_user ON messages (recipient_user, id);
";

/// Version 2: receipts (when shown, when read) and per-user hiding of shared
/// messages. Runs once on a version 1 database.
const MIGRATION_2: &str = "
ALTER TABLE messages ADD COLUMN shown_at INTEGER;
ALTER TABLE messages ADD COLUMN read_at INTEGER;
CREATE TABLE IF NOT EXISTS hidden (
    message_id INTEGER NOT NULL,
    user TEXT NOT NULL,
    PRIMARY KEY (message_id, user)
);
PRAGMA user_version = 2;
";

/// Version 3: the outgoing queue (store-and-forward for names that cannot be
/// reached now).
const MIGRATION_3: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    owner TEXT NOT NULL,
    to_name TEXT NOT NULL,
    from_name TEXT NOT NULL,
    text TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_try INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    done_at INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_try);
PRAGMA user_version = 3;
";

/// Version 4: what this host sent to other hosts, with the receipts they
/// returned.
const MIGRATION_4: &str = "
CREATE TABLE IF NOT EXISTS sent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sent_at INTEGER NOT NULL,
    owner TEXT NOT NULL,
    to_name TEXT NOT NULL,
    from_name TEXT NOT NULL,
    address TEXT NOT NULL,
    digest TEXT NOT NULL,
    shown_at INTEGER,
    read_at INTEGER
);
CREATE INDEX IF NOT EXISTS sent_by_address ON sent (address, id);
PRAGMA user_version = 4;
";

/// Version 5: each user's own receipts for shared messages (to the computer
/// name, broadcasts), so that one user reading such a message does not mark
/// it read for the others.
const MIGRATION_5: &str = "
CREATE TABLE IF NOT EXISTS shared_reads (
    message_id INTEGER NOT NULL,
    user TEXT NOT NULL,
    shown_at INTEGER,
    read_at INTEGER,
    PRIMARY KEY (message_id, user)
);
PRAGMA user_version = 5;
";

/// Version 6: a full-text index (FTS5, trigrams, case folded) of each
/// message's sender, alias and text, kept by triggers, for `--search`
/// (without column sizes: nothing is ranked, and each store writes less).
const MIGRATION_6: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    from_name, to_alias, text,
    content = 'messages', content_rowid = 'id', tokenize = 'trigram case_sensitive 0',
    columnsize = 0
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, from_name, to_alias, text)
    VALUES (new.id, new.from_name, new.to_alias, new.text);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, from_name, to_alias, text)
    VALUES ('delete', old.id, old.from_name, old.to_alias, old.text);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
PRAGMA user_version = 6;
";

/// Version 7: the queue and the sent records by owner, for their per-user
/// bounds.
const MIGRATION_7: &str = "
CREATE INDEX IF NOT EXISTS outbox_by_owner ON outbox (owner, id);
CREATE INDEX IF NOT EXISTS sent_by_owner ON sent (owner, id);
PRAGMA user_version = 7;
";

/// Creates or upgrades the schema to the current version.
fn migrate(conn: &mut Connection) -> Result<(), InboxError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tx = conn.transaction()?;
    if version < 1 {
        tx.execute_batch(SCHEMA)?;
    }
    if version < 2 {
        tx.execute_batch(MIGRATION_2)?;
    }
    if version < 3 {
        tx.execute_batch(MIGRATION_3)?;
    }
    if version < 4 {
        tx.execute_batch(MIGRATION_4)?;
    }
    if version < 5 {
        tx.execute_batch(MIGRATION_5)?;
    }
    if version < 6 {
        tx.execute_batch(MIGRATION_6)?;
    }
    if version < 7 {
        tx.execute_batch(MIGRATION_7)?;
    }
    tx.commit()?;
    Ok(())
}

fn connect(path: &Path) -> Result<Connection, InboxError> {
    let conn = Connection::open(path)?;
    // `casefold(x)`: lower case for every script, for search (SQLite's own
    // LIKE folds ASCII only).
    conn.create_scalar_function(
        "casefold",
        1,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8
            | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(ctx.get::<Option<String>>(0)?.map(|s| s.to_lowercase())),
    )?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// The current time in Unix milliseconds, as messages are stamped.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Inbox {
    /// Opens (creating, mode 0600) the inbox at `path` and starts its writer.
    /// Each inbox (a user's, or the shared one of the computer name) keeps at
    /// most `quota` messages; 0 means no quota.
    pub fn open(path: &Path, quota: u64) -> Result<InboxHandle, InboxError> {
        let io = |e| InboxError::Io(path.to_owned(), e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mut writer_conn = connect(path)?;
        migrate(&mut writer_conn)?;
        let counts = inbox_sizes(&writer_conn)?;
        let readers = readers::Readers::start(path, connect)?;
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        let (stored_tx, stored) = watch::channel(0);
        let quota = Quota {
            limit: quota,
            counts,
        };
        let thread = std::thread::Builder::new()
            .name("inbox-writer".into())
            .spawn(move || write_loop(writer_conn, rx, quota, &stored_tx))
            .map_err(io)?;
        Ok(InboxHandle(Arc::new(Inner {
            writer: tx,
            stored,
            readers,
            thread: Mutex::new(Some(thread)),
        })))
    }
}

/// Messages per inbox (keyed by owning user; `None` is the shared inbox).
type InboxSizes = HashMap<Option<String>, u64>;

fn inbox_sizes(conn: &Connection) -> Result<InboxSizes, InboxError> {
    let mut stmt =
        conn.prepare("SELECT recipient_user, COUNT(*) FROM messages GROUP BY recipient_user")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut sizes = InboxSizes::new();
    for row in rows {
        let (user, n) = row?;
        sizes.insert(user, u64::try_from(n).unwrap_or(0));
    }
    Ok(sizes)
}

/// The writer's view of the quota: kept in memory so that checking it costs
/// no query, and updated only after a commit.
struct Quota {
    limit: u64,
    counts: InboxSizes,
}

/// Messages added (positive) or removed (negative) per inbox by a batch.
type SizeChanges = HashMap<Option<String>, i64>;

fn write_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<WriteOp>,
    mut quota: Quota,
    stored: &watch::Sender<i64>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut changes = SizeChanges::new();
        let outcome = (|| -> Result<Vec<WriteResult>, rusqlite::Error> {
            let tx = conn.transaction()?;
            let results = batch
                .iter()
                .map(|op| apply(&tx, op, &quota, &mut changes))
                .collect();
            tx.commit()?;
            Ok(results)
        })();
        if let Ok(results) = &outcome {
            for (key, n) in changes {
                let count = quota.counts.entry(key).or_default();
                *count = count.saturating_add_signed(n);
            }
            let newest = batch
                .iter()
                .zip(results)
                .filter_map(|(op, result)| match (op, result) {
                    (WriteOp::Store(..), Ok(id)) => Some(*id),
                    _ => None,
                })
                .max();
            if let Some(id) = newest {
                stored.send_if_modified(|latest| {
                    let newer = id > *latest;
                    *latest = (*latest).max(id);
                    newer
                });
            }
        }
        // Answer only now: every store in the batch is committed (or none is).
        for (i, op) in batch.into_iter().enumerate() {
            let result = match &outcome {
                Ok(results) => results[i].clone(),
                Err(e) => Err(WriteFailure::Database(e.to_string())),
            };
            let reply = match op {
                WriteOp::Store(_, reply)
                | WriteOp::MarkRead(_, _, reply)
                | WriteOp::MarkShown(_, _, reply)
                | WriteOp::Delete(_, reply)
                | WriteOp::Prune(_, reply)
                | WriteOp::Queue(_, reply)
                | WriteOp::Sent(_, reply) => reply,
            };
            let _ = reply.send(result);
        }
    }
}

/// The SQL condition "user ?N may see this message" (root: `?N` is NULL).
fn visible_to(n: usize) -> String {
    format!(
        "(?{n} IS NULL OR ((recipient_user = ?{n} OR recipient_user IS NULL)
          AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.message_id = messages.id AND h.user = ?{n})))"
    )
}

/// `messages` with user `?N`'s own receipts for shared messages beside each
/// (none for root, `?N` NULL), as `r`.
fn with_receipts_of(n: usize) -> String {
    format!(
        "messages LEFT JOIN shared_reads r
           ON r.message_id = messages.id AND r.user = ?{n} AND messages.recipient_user IS NULL"
    )
}

/// Whether user `?N` has read the message (over [`with_receipts_of`]): a
/// shared one by their own receipt, any other by its own; root sees the
/// message's own (first reader's) state.
fn read_by(n: usize) -> String {
    format!(
        "(CASE WHEN ?{n} IS NOT NULL AND messages.recipient_user IS NULL
           THEN r.read_at IS NOT NULL ELSE messages.read END)"
    )
}

/// The columns of [`row_to_message`] as user `?N` sees the message (over
/// [`with_receipts_of`]): a shared message by their own receipt (shown on
/// their terminal or by their agent, read by them), any other by its own.
fn columns_for(n: usize) -> String {
    let shared = format!("?{n} IS NOT NULL AND messages.recipient_user IS NULL");
    format!(
        "messages.id, messages.received_at, messages.from_name, messages.to_alias,
         messages.recipient_user, messages.source, messages.text, messages.transport,
         messages.broadcast, {},
         CASE WHEN {shared} THEN r.shown_at ELSE messages.shown_at END,
         CASE WHEN {shared} THEN r.read_at ELSE messages.read_at END",
        read_by(n)
    )
}

/// Records user `?2`'s own receipt for the shared message `?1` at `?3`
/// (`read` also marks it shown); nothing for a user's own message.
fn shared_receipt(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    user: &str,
    read: bool,
) -> rusqlite::Result<usize> {
    let read_at = if read { "?3" } else { "NULL" };
    tx.execute(
        &format!(
            "INSERT INTO shared_reads (message_id, user, shown_at, read_at)
             SELECT id, ?2, ?3, {read_at} FROM messages WHERE id = ?1 AND recipient_user IS NULL
             ON CONFLICT (message_id, user) DO UPDATE SET
               shown_at = COALESCE(shown_at, excluded.shown_at),
               read_at = COALESCE(read_at, excluded.read_at)"
        ),
        params![id, user, now_ms()],
    )
}

/// Carries out one operation inside the batch's transaction, noting inbox
/// size changes for the quota.
fn apply(
    tx: &rusqlite::Transaction<'_>,
    op: &WriteOp,
    quota: &Quota,
    changes: &mut SizeChanges,
) -> WriteResult {
    let db = |e: rusqlite::Error| WriteFailure::Database(e.to_string());
    match op {
        WriteOp::Store(m, _) => {
            let key = m.recipient_user.clone();
            let pending = changes.get(&key).copied().unwrap_or(0);
            let held = quota
                .counts
                .get(&key)
                .copied()
                .unwrap_or(0)
                .saturating_add_signed(pending);
            if quota.limit > 0 && held >= quota.limit {
                return Err(WriteFailure::Quota);
            }
            tx.execute(
                "INSERT INTO messages (received_at, from_name, to_alias, recipient_user, source, text, transport, broadcast)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![now_ms(), m.from, m.to, m.recipient_user, m.source, m.text, m.transport.as_str(), m.broadcast],
            )
            .map_err(db)?;
            *changes.entry(key).or_default() += 1;
            Ok(tx.last_insert_rowid())
        }
        WriteOp::MarkRead(id, user, _) | WriteOp::MarkShown(id, user, _) => {
            let read = matches!(op, WriteOp::MarkRead(..));
            // The message's own columns keep the first reader's receipt (what
            // the sender is told); a user's own copy of the state of a shared
            // message goes to shared_reads.
            let set = if read {
                "read = 1, read_at = COALESCE(read_at, ?3), shown_at = COALESCE(shown_at, ?3)"
            } else {
                "shown_at = COALESCE(shown_at, ?3)"
            };
            let n = tx
                .execute(
                    &format!(
                        "UPDATE messages SET {set} WHERE id = ?1 AND {}",
                        visible_to(2)
                    ),
                    params![id, user, now_ms()],
                )
                .map_err(db)?;
            if let (true, Some(user)) = (n > 0, user) {
                shared_receipt(tx, *id, user, read).map_err(db)?;
            }
            Ok(n as i64)
        }
        WriteOp::Delete(d, _) => delete(tx, d, changes).map_err(db),
        WriteOp::Prune(r, _) => prune(tx, *r, changes).map_err(db),
        WriteOp::Queue(q, _) => queue_change(tx, q),
        WriteOp::Sent(op, _) => sent_change(tx, op).map_err(db),
    }
}

fn sent_change(tx: &rusqlite::Transaction<'_>, op: &SentOp) -> rusqlite::Result<i64> {
    match op {
        SentOp::Record {
            owner,
            to,
            from,
            address,
            digest,
            keep,
        } => {
            tx.execute(
                "INSERT INTO sent (sent_at, owner, to_name, from_name, address, digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![now_ms(), owner, to, from, address, digest],
            )?;
            let id = tx.last_insert_rowid();
            // The owner's records beyond `keep`, oldest first, go.
            tx.execute(
                "DELETE FROM sent WHERE owner = ?1 AND id <= (
                    SELECT id FROM sent WHERE owner = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![owner, i64::try_from(*keep).unwrap_or(i64::MAX)],
            )?;
            Ok(id)
        }
        SentOp::Receipt { address, receipt } => {
            let column = match receipt.state {
                netsend_proto::receipt::ReceiptState::Shown => "shown_at",
                netsend_proto::receipt::ReceiptState::Read => "read_at",
            };
            // Reading implies it was shown.
            let also_shown = if column == "read_at" {
                ", shown_at = COALESCE(shown_at, ?1)"
            } else {
                ""
            };
            tx.execute(
                &format!(
                    "UPDATE sent SET {column} = ?1{also_shown} WHERE id = (
                        SELECT id FROM sent WHERE address = ?2 AND upper(to_name) = upper(?3)
                        AND from_name = ?4 AND digest = ?5 AND {column} IS NULL
                        ORDER BY id DESC LIMIT 1)"
                ),
                params![
                    receipt.at_ms,
                    address,
                    receipt.to,
                    receipt.from,
                    receipt.digest
                ],
            )
            .map(|n| n as i64)
        }
    }
}

/// Makes room for one more entry of `owner` (who may hold `cap`), deleting
/// their oldest finished entries if needed; fails when all are waiting.
fn make_room(tx: &rusqlite::Transaction<'_>, owner: &str, cap: u64) -> Result<(), WriteFailure> {
    use netsend_proto::queue::{room, Room};
    let db = |e: rusqlite::Error| WriteFailure::Database(e.to_string());
    let (held, finished): (i64, i64) = tx
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(state != 'queued'), 0) FROM outbox WHERE owner = ?1",
            params![owner],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db)?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    match room(count(held), count(finished), cap) {
        Room::Free => Ok(()),
        Room::Full => Err(WriteFailure::QueueFull(cap)),
        Room::Evict(n) => tx
            .execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
                 WHERE owner = ?1 AND state != 'queued' ORDER BY id LIMIT ?2)",
                params![owner, i64::try_from(n).unwrap_or(i64::MAX)],
            )
            .map(drop)
            .map_err(db),
    }
}

fn queue_change(tx: &rusqlite::Transaction<'_>, op: &QueueOp) -> WriteResult {
    let now = now_ms();
    let db = |e: rusqlite::Error| WriteFailure::Database(e.to_string());
    match op {
        QueueOp::Add {
            owner,
            to,
            from,
            text,
            expires_at,
            next_try,
            error,
            max_per_owner,
        } => {
            make_room(tx, owner, *max_per_owner)?;
            tx.execute(
                "INSERT INTO outbox (created_at, owner, to_name, from_name, text, expires_at, attempts, last_error, next_try)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)",
                params![now, owner, to, from, text, expires_at, error, next_try],
            )
            .map_err(db)?;
            Ok(tx.last_insert_rowid())
        }
        QueueOp::Delivered { id } => tx
            .execute(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, done_at = ?2,
                 last_error = NULL WHERE id = ?1 AND state = 'queued'",
                params![id, now],
            )
            .map(|n| n as i64)
            .map_err(db),
        QueueOp::Failed {
            id,
            error,
            next_try,
        } => tx
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
                 next_try = COALESCE(?3, next_try),
                 state = CASE WHEN ?3 IS NULL THEN 'expired' ELSE 'queued' END,
                 done_at = CASE WHEN ?3 IS NULL THEN ?4 ELSE NULL END
                 WHERE id = ?1 AND state = 'queued'",
                params![id, error, next_try, now],
            )
            .map(|n| n as i64)
            .map_err(db),
        QueueOp::Cancel { id, owner } => tx
            .execute(
                "UPDATE outbox SET state = 'cancelled', done_at = ?3
                 WHERE id = ?1 AND state = 'queued' AND (?2 IS NULL OR owner = ?2)",
                params![id, owner, now],
            )
            .map(|n| n as i64)
            .map_err(db),
    }
}

const QUEUE_COLUMNS: &str = "id, created_at, owner, to_name, from_name, text, expires_at, attempts, last_error, next_try, state, done_at";

fn row_to_queued(row: &rusqlite::Row<'_>) -> rusqlite::Result<Queued> {
    Ok(Queued {
        id: row.get(0)?,
        created_at: row.get(1)?,
        owner: row.get(2)?,
        to: row.get(3)?,
        from: row.get(4)?,
        text: row.get(5)?,
        expires_at: row.get(6)?,
        attempts: row.get(7)?,
        last_error: row.get(8)?,
        next_try: row.get(9)?,
        state: row.get(10)?,
        done_at: row.get(11)?,
    })
}

fn delete(
    tx: &rusqlite::Transaction<'_>,
    d: &Deletion,
    changes: &mut SizeChanges,
) -> rusqlite::Result<i64> {
    let mut targets: Vec<(i64, Option<String>)> = Vec::new();
    {
        let mut by_id = tx.prepare_cached(&format!(
            "SELECT id, recipient_user FROM messages WHERE id = ?1 AND {}",
            visible_to(2)
        ))?;
        for id in &d.ids {
            if let Some(row) = by_id
                .query_row(params![id, d.user], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
            {
                targets.push(row);
            }
        }
        if d.read {
            let mut read = tx.prepare_cached(&format!(
                "SELECT messages.id, messages.recipient_user FROM {} WHERE {} = 1 AND {}",
                with_receipts_of(1),
                read_by(1),
                visible_to(1)
            ))?;
            let rows = read.query_map(params![d.user], |r| Ok((r.get(0)?, r.get(1)?)))?;
            for row in rows {
                let row = row?;
                if !targets.contains(&row) {
                    targets.push(row);
                }
            }
        }
    }
    for (id, owner) in &targets {
        let own = d.user.is_none() || owner.is_some() && owner == &d.user;
        if own {
            forget(tx, *id)?;
            *changes.entry(owner.clone()).or_default() -= 1;
        } else {
            tx.execute(
                "INSERT OR IGNORE INTO hidden (message_id, user) VALUES (?1, ?2)",
                params![id, d.user],
            )?;
        }
    }
    Ok(targets.len() as i64)
}

/// Deletes a message with what each user recorded about it.
fn forget(tx: &rusqlite::Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM messages WHERE id = ?1", params![id])?;
    tx.execute("DELETE FROM hidden WHERE message_id = ?1", params![id])?;
    tx.execute(
        "DELETE FROM shared_reads WHERE message_id = ?1",
        params![id],
    )?;
    Ok(())
}

fn prune(
    tx: &rusqlite::Transaction<'_>,
    r: Retention,
    changes: &mut SizeChanges,
) -> rusqlite::Result<i64> {
    let mut doomed: Vec<(i64, Option<String>)> = Vec::new();
    if r.max_age_ms > 0 {
        let mut old =
            tx.prepare_cached("SELECT id, recipient_user FROM messages WHERE received_at < ?1")?;
        let cutoff = now_ms().saturating_sub(r.max_age_ms);
        for row in old.query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))? {
            doomed.push(row?);
        }
    }
    if r.max_per_inbox > 0 {
        let mut sizes = tx.prepare_cached(
            "SELECT recipient_user, COUNT(*) FROM messages GROUP BY recipient_user",
        )?;
        let over: Vec<(Option<String>, i64)> = sizes
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let limit = i64::try_from(r.max_per_inbox).unwrap_or(i64::MAX);
        // Read messages go first, then the oldest.
        let mut oldest = tx.prepare_cached(
            "SELECT id, recipient_user FROM messages WHERE recipient_user IS ?1
             ORDER BY read DESC, id ASC LIMIT ?2",
        )?;
        for (user, n) in over.into_iter().filter(|(_, n)| *n > limit) {
            for row in oldest.query_map(params![user, n - limit], |r| Ok((r.get(0)?, r.get(1)?)))? {
                let row = row?;
                if !doomed.contains(&row) {
                    doomed.push(row);
                }
            }
        }
    }
    for (id, owner) in &doomed {
        forget(tx, *id)?;
        *changes.entry(owner.clone()).or_default() -= 1;
    }
    let mut removed = doomed.len();
    let now = now_ms();
    if r.finished_max_age_ms > 0 {
        removed += tx.execute(
            "DELETE FROM outbox WHERE state != 'queued' AND done_at < ?1",
            params![now.saturating_sub(r.finished_max_age_ms)],
        )?;
    }
    if r.sent_max_age_ms > 0 {
        removed += tx.execute(
            "DELETE FROM sent WHERE sent_at < ?1",
            params![now.saturating_sub(r.sent_max_age_ms)],
        )?;
    }
    Ok(removed as i64)
}

impl WriteFailure {
    fn into_error(self, recipient: Option<&str>) -> InboxError {
        match self {
            Self::Quota => {
                InboxError::QuotaExceeded(recipient.unwrap_or("the computer name").to_owned())
            }
            Self::QueueFull(cap) => InboxError::QueueFull(cap),
            Self::Database(e) => InboxError::Sqlite(rusqlite::Error::InvalidParameterName(e)),
        }
    }
}

fn row_to_message(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        id: row.get(0)?,
        received_at: row.get(1)?,
        from: row.get(2)?,
        to: row.get(3)?,
        recipient_user: row.get(4)?,
        source: row.get(5)?,
        text: row.get(6)?,
        transport: Transport::parse(&row.get::<_, String>(7)?),
        broadcast: row.get(8)?,
        read: row.get(9)?,
        shown_at: row.get(10)?,
        read_at: row.get(11)?,
    })
}

const COLUMNS: &str = "id, received_at, from_name, to_alias, recipient_user, source, text, transport, broadcast, read, shown_at, read_at";

impl InboxHandle {
    /// Stores a message; returns its id once the transaction has committed.
    pub async fn store(&self, message: NewMessage) -> Result<i64, InboxError> {
        if message.text.len() > MAX_TEXT_LEN {
            return Err(InboxError::TooLarge(message.text.len()));
        }
        let (tx, rx) = oneshot::channel();
        let recipient = message.recipient_user.clone();
        self.0
            .writer
            .send(WriteOp::Store(message, tx))
            .await
            .map_err(|_| InboxError::Closed)?;
        rx.await
            .map_err(|_| InboxError::Closed)?
            .map_err(|e| e.into_error(recipient.as_deref()))
    }

    /// Marks a message read; `user` limits it to messages that user may see.
    pub async fn mark_read(&self, id: i64, user: Option<&str>) -> Result<bool, InboxError> {
        let (tx, rx) = oneshot::channel();
        self.0
            .writer
            .send(WriteOp::MarkRead(id, user.map(String::from), tx))
            .await
            .map_err(|_| InboxError::Closed)?;
        rx.await
            .map_err(|_| InboxError::Closed)?
            .map(|n| n > 0)
            .map_err(|e| e.into_error(user))
    }

    /// Records that a message was shown (on a terminal or a desktop); `user`
    /// limits it to messages that user may see. Returns whether it exists.
    pub async fn mark_shown(&self, id: i64, user: Option<&str>) -> Result<bool, InboxError> {
        self.write(
            |tx| WriteOp::MarkShown(id, user.map(String::from), tx),
            user,
        )
        .await
        .map(|n| n > 0)
    }

    /// Deletes messages (see [`Deletion`]); returns how many were deleted or
    /// hidden.
    pub async fn delete(&self, deletion: Deletion) -> Result<u64, InboxError> {
        let user = deletion.user.clone();
        self.write(|tx| WriteOp::Delete(deletion, tx), user.as_deref())
            .await
            .map(|n| n.unsigned_abs())
    }

    /// Applies retention; returns how many messages, queue entries and sent
    /// records were removed.
    pub async fn prune(&self, retention: Retention) -> Result<u64, InboxError> {
        self.write(|tx| WriteOp::Prune(retention, tx), None)
            .await
            .map(|n| n.unsigned_abs())
    }

    async fn write(
        &self,
        op: impl FnOnce(oneshot::Sender<WriteResult>) -> WriteOp,
        user: Option<&str>,
    ) -> Result<i64, InboxError> {
        let (tx, rx) = oneshot::channel();
        self.0
            .writer
            .send(op(tx))
            .await
            .map_err(|_| InboxError::Closed)?;
        rx.await
            .map_err(|_| InboxError::Closed)?
            .map_err(|e| e.into_error(user))
    }

    /// Follows the id of the newest message committed, so that a client can
    /// wait for new messages instead of asking again and again.
    pub fn watch_stored(&self) -> watch::Receiver<i64> {
        self.0.stored.clone()
    }

    /// Runs `read` on a reader thread for `user` (`None`: root or the
    /// service, whose reads are not capped).
    async fn read<T: Send + 'static>(
        &self,
        user: Option<&str>,
        read: impl FnOnce(&Connection) -> Result<T, InboxError> + Send + 'static,
    ) -> Result<T, InboxError> {
        self.0.readers.run(user, read).await
    }

    /// Lists messages, oldest first.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<StoredMessage>, InboxError> {
        let search = Search::parse(filter.search.as_deref().unwrap_or(""))?;
        let (indexed, scan) = match search {
            Search::All => (None, None),
            Search::Scan(s) => (None, Some(s)),
            Search::Indexed(q) => (Some(q), None),
        };
        let filter = filter.clone();
        self.read(filter.user.clone().as_deref(), move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM {}
                 WHERE {} AND (?2 = 0 OR {} = 0) AND messages.id > ?3
                   AND (?5 IS NULL OR messages.id IN (SELECT rowid FROM messages_fts
                        WHERE messages_fts MATCH ?5 AND rowid > ?3))
                   AND (?6 IS NULL OR instr(casefold(from_name), ?6)
                        OR instr(casefold(to_alias), ?6) OR instr(casefold(text), ?6))
                 ORDER BY messages.id LIMIT ?4",
                columns_for(1),
                with_receipts_of(1),
                visible_to(1),
                read_by(1)
            ))?;
            let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(
                params![
                    filter.user,
                    filter.unread_only,
                    filter.after_id.unwrap_or(0),
                    limit,
                    indexed,
                    scan
                ],
                row_to_message,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// `user`'s own messages that are unread and were never shown, received
    /// at `since_ms` or later, oldest first.
    pub async fn pending(
        &self,
        user: &str,
        since_ms: i64,
    ) -> Result<Vec<StoredMessage>, InboxError> {
        let user = user.to_owned();
        self.read(None, move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM messages WHERE recipient_user = ?1 AND read = 0
                 AND shown_at IS NULL AND received_at >= ?2 ORDER BY id"
            ))?;
            let rows = stmt.query_map(params![user, since_ms], row_to_message)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Changes the record of sent messages; returns the new record's id
    /// (`Record`) or how many records a receipt updated.
    pub async fn sent_change(&self, op: SentOp) -> Result<i64, InboxError> {
        self.write(|tx| WriteOp::Sent(op, tx), None).await
    }

    /// A sent message and its receipts, if `owner` (root: `None`) sent it.
    pub async fn sent(
        &self,
        id: i64,
        owner: Option<&str>,
    ) -> Result<Option<SentRecord>, InboxError> {
        let owner = owner.map(String::from);
        self.read(owner.clone().as_deref(), move |conn| {
            Ok(conn
                .query_row(
                    "SELECT id, sent_at, to_name, from_name, address, shown_at, read_at FROM sent
                     WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)",
                    params![id, owner],
                    |r| {
                        Ok(SentRecord {
                            id: r.get(0)?,
                            sent_at: r.get(1)?,
                            to: r.get(2)?,
                            from: r.get(3)?,
                            address: r.get(4)?,
                            shown_at: r.get(5)?,
                            read_at: r.get(6)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Changes the outgoing queue; returns the new entry's id (`Add`) or how
    /// many entries changed.
    pub async fn queue(&self, op: QueueOp) -> Result<i64, InboxError> {
        self.write(|tx| WriteOp::Queue(op, tx), None).await
    }

    /// At most `limit` entries of the outgoing queue of `owner` (root:
    /// `None`, everyone's) with ids above `after_id`, oldest first.
    pub async fn queued(
        &self,
        owner: Option<&str>,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Queued>, InboxError> {
        let owner = owner.map(String::from);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(owner.clone().as_deref(), move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {QUEUE_COLUMNS} FROM outbox WHERE (?1 IS NULL OR owner = ?1) AND id > ?2
                 ORDER BY id LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![owner, after_id, limit], row_to_queued)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Queued entries due for another attempt at `now_ms`.
    pub async fn due(&self, now_ms: i64) -> Result<Vec<Queued>, InboxError> {
        self.read(None, move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {QUEUE_COLUMNS} FROM outbox WHERE state = 'queued' AND next_try <= ?1 ORDER BY next_try LIMIT 64"
            ))?;
            let rows = stmt.query_map(params![now_ms], row_to_queued)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Counts every message.
    pub async fn count(&self) -> Result<usize, InboxError> {
        self.read(None, |conn| {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// One message, if `user` may see it.
    pub async fn get(
        &self,
        id: i64,
        user: Option<&str>,
    ) -> Result<Option<StoredMessage>, InboxError> {
        let user = user.map(String::from);
        self.read(user.clone().as_deref(), move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {} FROM {} WHERE messages.id = ?1 AND {}",
                        columns_for(2),
                        with_receipts_of(2),
                        visible_to(2)
                    ),
                    params![id, user],
                    row_to_message,
                )
                .optional()?)
        })
        .await
    }

    /// Runs SQLite's integrity check; `Ok(())` when the database is sound.
    pub async fn check_integrity(&self) -> Result<(), InboxError> {
        self.read(None, |conn| {
            let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            if verdict == "ok" {
                Ok(())
            } else {
                Err(InboxError::Sqlite(rusqlite::Error::InvalidParameterName(
                    verdict,
                )))
            }
        })
        .await
    }

    /// Stops the writer after everything queued is committed.
    pub async fn close(&self) {
        let thread = self.0.thread.lock().expect("inbox thread lock").take();
        if let Some(thread) = thread {
            // Dropping our sender is not enough while clones live; the writer
            // ends when the last handle goes. Wait for the queue to drain.
            let writer = self.0.writer.clone();
            let _ = tokio::task::spawn_blocking(move || {
                while writer.capacity() < QUEUE_LEN {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                drop(thread);
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(to: &str, user: Option<&str>, text: &str) -> NewMessage {
        NewMessage {
            from: "BOB".into(),
            to: to.into(),
            recipient_user: user.map(String::from),
            source: "192.0.2.20:5000".into(),
            text: text.into(),
            transport: Transport::Session,
            broadcast: false,
        }
    }

    async fn ids(inbox: &InboxHandle, filter: &ListFilter) -> Vec<i64> {
        inbox
            .list(filter)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect()
    }

    fn all() -> ListFilter {
        ListFilter {
            limit: usize::MAX,
            ..ListFilter::default()
        }
    }

    #[tokio::test]
    async fn store_list_read_and_filter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.db");
        let inbox = Inbox::open(&path, 0).unwrap();
        let a = inbox.store(msg("HOST", None, "to everyone")).await.unwrap();
        let b = inbox
            .store(msg("ALICE", Some("alice"), "for alice"))
            .await
            .unwrap();
        let c = inbox
            .store(msg("CAROL", Some("carol"), "for carol"))
            .await
            .unwrap();
        assert!(a < b && b < c);
        assert_eq!(inbox.list(&all()).await.unwrap().len(), 3);
        let alice = ListFilter {
            user: Some("alice".into()),
            ..all()
        };
        let texts: Vec<String> = inbox
            .list(&alice)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["to everyone", "for alice"]);
        assert!(inbox.get(c, Some("alice")).await.unwrap().is_none());
        assert!(!inbox.mark_read(c, Some("alice")).await.unwrap());
        assert!(inbox.mark_read(b, Some("alice")).await.unwrap());
        let unread = ListFilter {
            unread_only: true,
            ..all()
        };
        assert_eq!(inbox.list(&unread).await.unwrap().len(), 2);
        let after = ListFilter {
            after_id: Some(b),
            ..all()
        };
        assert_eq!(inbox.list(&after).await.unwrap()[0].id, c);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        inbox.check_integrity().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_stores_are_all_durable_when_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.db");
        let inbox = Inbox::open(&path, 0).unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let inbox = inbox.clone();
                let path = path.clone();
                tokio::spawn(async move {
                    let id = inbox
                        .store(msg("HOST", None, &format!("m{i}")))
                        .await
                        .unwrap();
                    // Acknowledged means committed: a fresh connection sees it.
                    let fresh = Connection::open(&path).unwrap();
                    let n: i64 = fresh
                        .query_row("SELECT COUNT(*) FROM messages WHERE id = ?1", [id], |r| {
                            r.get(0)
                        })
                        .unwrap();
                    assert_eq!(n, 1);
                    id
                })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 200);
        inbox.close().await;
        drop(inbox);
        let reopened = Inbox::open(&path, 0).unwrap();
        assert_eq!(reopened.count().await.unwrap(), 200);
    }

    #[tokio::test]
    async fn oversized_text_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
        let big = "x".repeat(MAX_TEXT_LEN + 1);
        assert!(matches!(
            inbox.store(msg("H", None, &big)).await,
            Err(InboxError::TooLarge(_))
        ));
    }

    #[tokio::test]
    async fn quota_is_per_inbox_and_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.db");
        let inbox = Inbox::open(&path, 3).unwrap();
        // Concurrent stores land in one batch; the quota still holds exactly.
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let inbox = inbox.clone();
                tokio::spawn(async move {
                    inbox
                        .store(msg("ALICE", Some("alice"), &format!("{i}")))
                        .await
                })
            })
            .collect();
        let mut stored = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => stored += 1,
                Err(InboxError::QuotaExceeded(who)) => assert_eq!(who, "alice"),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(stored, 3);
        // Another user's inbox and the shared one are not affected.
        inbox.store(msg("BOB", Some("bob"), "hi")).await.unwrap();
        inbox.store(msg("HOST", None, "hi")).await.unwrap();
        inbox.close().await;
        drop(inbox);
        let reopened = Inbox::open(&path, 3).unwrap();
        assert!(matches!(
            reopened.store(msg("ALICE", Some("alice"), "more")).await,
            Err(InboxError::QuotaExceeded(_))
        ));
        assert_eq!(reopened.count().await.unwrap(), 5);
    }

    #[tokio::test]
    async fn a_version_1_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch("PRAGMA user_version = 1;").unwrap();
            conn.execute(
                "INSERT INTO messages (received_at, from_name, to_alias, recipient_user, source, text, transport, broadcast)
                 VALUES (1, 'BOB', 'ALICE', 'alice', 'x', 'kept', 'session', 0)",
                [],
            )
            .unwrap();
        }
        let inbox = Inbox::open(&path, 0).unwrap();
        let listed = inbox.list(&all()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].text, "kept");
        assert_eq!((listed[0].shown_at, listed[0].read_at), (None, None));
        assert!(inbox.mark_shown(listed[0].id, Some("alice")).await.unwrap());
        inbox.close().await;
        drop(inbox);
        // Opening again does not migrate twice.
        let again = Inbox::open(&path, 0).unwrap();
        assert!(again.list(&all()).await.unwrap()[0].shown_at.is_some());
    }

    #[tokio::test]
    async fn receipts_search_and_deletion_rules() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("i.db"), 2).unwrap();
        let own = inbox
            .store(msg("ALICE", Some("alice"), "lunch at noon"))
            .await
            .unwrap();
        let shared = inbox
            .store(msg("HOST", None, "server going DOWN"))
            .await
            .unwrap();
        let bobs = inbox
            .store(msg("BOB", Some("bob"), "for bob"))
            .await
            .unwrap();
        let alice = |search: Option<&str>| ListFilter {
            user: Some("alice".into()),
            limit: 100,
            search: search.map(String::from),
            ..ListFilter::default()
        };
        // Search: sender, alias or text; ASCII case-insensitive; wildcards literal.
        assert_eq!(ids(&inbox, &alice(Some("down"))).await, [shared]);
        assert_eq!(ids(&inbox, &alice(Some("NOON"))).await, [own]);
        let zoe = inbox
            .store(msg("ALICE", Some("alice"), "Grüße von ZOË"))
            .await
            .unwrap();
        assert_eq!(ids(&inbox, &alice(Some("zoë"))).await, [zoe]);
        assert_eq!(ids(&inbox, &alice(Some("GRÜSSE"))).await, Vec::<i64>::new());
        inbox
            .delete(Deletion {
                ids: vec![zoe],
                read: false,
                user: None,
            })
            .await
            .unwrap();
        assert!(ids(&inbox, &alice(Some("%"))).await.is_empty());
        // Receipts.
        assert!(inbox.mark_read(own, Some("alice")).await.unwrap());
        let m = inbox.get(own, Some("alice")).await.unwrap().unwrap();
        assert!(m.read_at.is_some() && m.shown_at.is_some());
        assert_eq!(m.state(), "read");
        // Alice cannot touch Bob's message; her own is deleted, the shared
        // one only hidden from her.
        let deleted = inbox
            .delete(Deletion {
                ids: vec![own, shared, bobs],
                read: false,
                user: Some("alice".into()),
            })
            .await
            .unwrap();
        assert_eq!(deleted, 2);
        assert!(ids(&inbox, &alice(None)).await.is_empty());
        let root: Vec<i64> = inbox
            .list(&all())
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(root, [shared, bobs]);
        // Deleting freed Alice's quota (2 per inbox).
        for text in ["a", "b"] {
            inbox
                .store(msg("ALICE", Some("alice"), text))
                .await
                .unwrap();
        }
        assert!(matches!(
            inbox.store(msg("ALICE", Some("alice"), "c")).await,
            Err(InboxError::QuotaExceeded(_))
        ));
    }

    #[tokio::test]
    async fn each_user_reads_a_shared_message_for_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
        let shared = inbox.store(msg("HOST", None, "to everyone")).await.unwrap();
        let own = inbox
            .store(msg("ALICE", Some("alice"), "to alice"))
            .await
            .unwrap();
        let view = |user: Option<&'static str>| {
            let inbox = inbox.clone();
            async move { inbox.get(shared, user).await.unwrap().unwrap() }
        };
        let unread = |user: &str| {
            let filter = ListFilter {
                user: Some(user.into()),
                unread_only: true,
                limit: 100,
                ..ListFilter::default()
            };
            let inbox = inbox.clone();
            async move { ids(&inbox, &filter).await }
        };
        // Alice reads it: read for her, and (first reader) for the sender's
        // receipt, which root sees; still unread for Bob.
        assert!(inbox.mark_read(shared, Some("alice")).await.unwrap());
        assert!(view(Some("alice")).await.read && view(Some("alice")).await.read_at.is_some());
        assert!(view(None).await.read && view(None).await.read_at.is_some());
        assert!(!view(Some("bob")).await.read && view(Some("bob")).await.read_at.is_none());
        assert_eq!(unread("alice").await, [own]);
        assert_eq!(unread("bob").await, [shared]);
        // Shown to Bob is not read by Bob.
        assert!(inbox.mark_shown(shared, Some("bob")).await.unwrap());
        assert!(view(Some("bob")).await.shown_at.is_some() && !view(Some("bob")).await.read);
        // `delete --read` goes by each user's own state: Bob has read
        // nothing, Alice hides the shared message from herself only.
        let read_ones = |user: &str| Deletion {
            ids: Vec::new(),
            read: true,
            user: Some(user.into()),
        };
        assert_eq!(inbox.delete(read_ones("bob")).await.unwrap(), 0);
        assert_eq!(inbox.delete(read_ones("alice")).await.unwrap(), 1);
        assert!(inbox.get(shared, Some("alice")).await.unwrap().is_none());
        assert_eq!(unread("bob").await, [shared]);
        // Deleted for good, its per-user receipts go with it.
        inbox
            .delete(Deletion {
                ids: vec![shared],
                read: false,
                user: None,
            })
            .await
            .unwrap();
        assert!(inbox.get(shared, None).await.unwrap().is_none());
        inbox.close().await;
        let conn = Connection::open(dir.path().join("i.db")).unwrap();
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM shared_reads", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn retention_by_count_takes_read_messages_first_then_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                inbox
                    .store(msg("ALICE", Some("alice"), &format!("{i}")))
                    .await
                    .unwrap(),
            );
        }
        inbox.store(msg("BOB", Some("bob"), "bob's")).await.unwrap();
        inbox.mark_read(ids[3], None).await.unwrap();
        let removed = inbox
            .prune(Retention {
                max_age_ms: 0,
                max_per_inbox: 3,
                ..Retention::default()
            })
            .await
            .unwrap();
        assert_eq!(removed, 2);
        let left: Vec<String> = inbox
            .list(&all())
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(left, ["1", "2", "4", "bob's"]);
        // By age: everything is younger than a day, nothing goes.
        let removed = inbox
            .prune(Retention {
                max_age_ms: 86_400_000,
                max_per_inbox: 0,
                ..Retention::default()
            })
            .await
            .unwrap();
        assert_eq!(removed, 0);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let removed = inbox
            .prune(Retention {
                max_age_ms: 1,
                max_per_inbox: 0,
                ..Retention::default()
            })
            .await
            .unwrap();
        assert_eq!(removed, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_past_its_cpu_budget_is_stopped_and_only_its_user_waits() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
        let endless = inbox.read(Some("mallory"), |conn| {
            let n: i64 = conn.query_row(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
                 SELECT COUNT(*) FROM c",
                [],
                |r| r.get(0),
            )?;
            Ok(n)
        });
        let other = async {
            // Meanwhile other readers answer.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let started = std::time::Instant::now();
            inbox.count().await.unwrap();
            started.elapsed()
        };
        // The same user's next read waits for their first; another user's
        // does not.
        let own_next = async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            inbox.read(Some("mallory"), |_| Ok(())).await.unwrap();
            std::time::Instant::now()
        };
        let alice = async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let started = std::time::Instant::now();
            inbox.read(Some("alice"), |_| Ok(())).await.unwrap();
            started.elapsed()
        };
        let (endless, other, own_next, alice) = tokio::join!(
            async {
                let r = endless.await;
                (r, std::time::Instant::now())
            },
            other,
            own_next,
            alice
        );
        let (endless, stopped) = endless;
        assert!(matches!(endless, Err(InboxError::TooSlow)), "{endless:?}");
        assert!(other < std::time::Duration::from_secs(1), "{other:?}");
        assert!(alice < std::time::Duration::from_secs(1), "{alice:?}");
        assert!(
            own_next >= stopped,
            "mallory's second read ran beside the first"
        );
        // The reader that was stopped serves again.
        for _ in 0..readers::READERS {
            assert_eq!(inbox.count().await.unwrap(), 0);
        }
    }

    #[tokio::test]
    async fn queue_and_sent_records_stay_bounded_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
        let add = |owner: &str, text: &str| QueueOp::Add {
            owner: owner.into(),
            to: "AWAY".into(),
            from: owner.into(),
            text: text.into(),
            expires_at: i64::MAX,
            next_try: i64::MAX,
            error: "2273".into(),
            max_per_owner: 2,
        };
        let first = inbox.queue(add("alice", "1")).await.unwrap();
        inbox.queue(add("alice", "2")).await.unwrap();
        assert!(matches!(
            inbox.queue(add("alice", "3")).await,
            Err(InboxError::QueueFull(2))
        ));
        // Another user's share is their own.
        inbox.queue(add("bob", "b")).await.unwrap();
        // A finished entry makes room; the table keeps two of Alice's.
        let cancel = QueueOp::Cancel {
            id: first,
            owner: Some("alice".into()),
        };
        assert_eq!(inbox.queue(cancel).await.unwrap(), 1);
        inbox.queue(add("alice", "3")).await.unwrap();
        let texts =
            |entries: Vec<Queued>| -> Vec<String> { entries.into_iter().map(|q| q.text).collect() };
        assert_eq!(
            texts(inbox.queued(Some("alice"), 0, 10).await.unwrap()),
            ["2", "3"]
        );
        // Pages: after an id, at most a limit.
        let all = inbox.queued(None, 0, 10).await.unwrap();
        assert_eq!(
            texts(inbox.queued(None, all[0].id, 1).await.unwrap()),
            [all[1].text.clone()]
        );
        // Sent records: the newest `keep` per owner.
        for i in 0..5 {
            let record = SentOp::Record {
                owner: "alice".into(),
                to: format!("TO{i}"),
                from: "alice".into(),
                address: "192.0.2.9".into(),
                digest: "d".into(),
                keep: 3,
            };
            inbox.sent_change(record).await.unwrap();
        }
        let mut kept = Vec::new();
        for id in 1..=5 {
            if let Some(r) = inbox.sent(id, Some("alice")).await.unwrap() {
                kept.push(r.to);
            }
        }
        assert_eq!(kept, ["TO2", "TO3", "TO4"]);
        // Ages: finished entries and sent records go; waiting entries stay.
        let done = QueueOp::Cancel {
            id: all[1].id,
            owner: None,
        };
        inbox.queue(done).await.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let removed = inbox
            .prune(Retention {
                finished_max_age_ms: 1,
                sent_max_age_ms: 1,
                ..Retention::default()
            })
            .await
            .unwrap();
        assert_eq!(removed, 4);
        assert_eq!(inbox.queued(None, 0, 10).await.unwrap().len(), 2);
        assert!(inbox.sent(5, None).await.unwrap().is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// The trigram index finds exactly the messages whose sender, alias
        /// or text contains the search text, in any case, as a scan would.
        #[test]
        fn search_finds_what_contains_the_text(
            texts in proptest::collection::vec("[abcAB \"%*_()éÉ-]{0,12}", 1..8),
            needle in "[abcAB \"%*_()éÉ-]{0,5}",
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let inbox = Inbox::open(&dir.path().join("i.db"), 0).unwrap();
                let mut expected = Vec::new();
                for text in &texts {
                    let id = inbox.store(msg("HOST", None, text)).await.unwrap();
                    let folded = |s: &str| s.to_lowercase();
                    if [text.as_str(), "HOST", "BOB"].iter().any(|f| folded(f).contains(&folded(&needle))) {
                        expected.push(id);
                    }
                }
                let filter = ListFilter { search: Some(needle.clone()), ..all() };
                assert_eq!(ids(&inbox, &filter).await, expected, "{needle:?} in {texts:?}");
            });
        }
    }
}
