//! The durable inbox: SQLite (WAL, `synchronous=FULL`) with one writer thread.
//!
//! [`InboxHandle::store`] returns only after the transaction holding the message
//! has committed, so the session driver can acknowledge the sender afterwards
//! and a crash never loses an acknowledged message. Messages queued at the same
//! time share one transaction (group commit) without giving up that promise.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// Largest text stored (a message is at most a few KiB on the wire).
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// Messages waiting for the writer before senders are made to wait.
const QUEUE_LEN: usize = 1024;
/// Most operations committed in one transaction.
const MAX_BATCH: usize = 128;

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
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Mailslot => "mailslot",
            Self::Local => "local",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "mailslot" => Self::Mailslot,
            "local" => Self::Local,
            _ => Self::Session,
        }
    }
}

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
}

/// Why the writer could not carry out one operation.
#[derive(Debug, Clone)]
enum WriteFailure {
    /// The recipient's inbox is full.
    Quota,
    /// SQLite failed; the text says how.
    Database(String),
}

type WriteResult = Result<i64, WriteFailure>;

enum WriteOp {
    Store(NewMessage, oneshot::Sender<WriteResult>),
    MarkRead(i64, Option<String>, oneshot::Sender<WriteResult>),
}

struct Inner {
    writer: mpsc::Sender<WriteOp>,
    reader: Mutex<Connection>,
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
PRAGMA user_version = 1;
";

fn connect(path: &Path) -> Result<Connection, InboxError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

fn now_ms() -> i64 {
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
        let writer_conn = connect(path)?;
        writer_conn.execute_batch(SCHEMA)?;
        let counts = inbox_sizes(&writer_conn)?;
        let reader = connect(path)?;
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        let quota = Quota {
            limit: quota,
            counts,
        };
        let thread = std::thread::Builder::new()
            .name("inbox-writer".into())
            .spawn(move || write_loop(writer_conn, rx, quota))
            .map_err(io)?;
        Ok(InboxHandle(Arc::new(Inner {
            writer: tx,
            reader: Mutex::new(reader),
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

fn write_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteOp>, mut quota: Quota) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut added = InboxSizes::new();
        let outcome = (|| -> Result<Vec<WriteResult>, rusqlite::Error> {
            let tx = conn.transaction()?;
            let mut results = Vec::with_capacity(batch.len());
            for op in &batch {
                results.push(match op {
                    WriteOp::Store(m, _) => {
                        let key = m.recipient_user.clone();
                        let held = quota.counts.get(&key).copied().unwrap_or(0)
                            + added.get(&key).copied().unwrap_or(0);
                        if quota.limit > 0 && held >= quota.limit {
                            Err(WriteFailure::Quota)
                        } else {
                            let stored = tx
                                .execute(
                                    "INSERT INTO messages (received_at, from_name, to_alias, recipient_user, source, text, transport, broadcast)
                                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                    params![now_ms(), m.from, m.to, m.recipient_user, m.source, m.text, m.transport.as_str(), m.broadcast],
                                )
                                .map(|_| tx.last_insert_rowid())
                                .map_err(|e| WriteFailure::Database(e.to_string()));
                            if stored.is_ok() {
                                *added.entry(key).or_default() += 1;
                            }
                            stored
                        }
                    }
                    WriteOp::MarkRead(id, user, _) => tx
                        .execute(
                            "UPDATE messages SET read = 1 WHERE id = ?1
                             AND (?2 IS NULL OR recipient_user = ?2 OR recipient_user IS NULL)",
                            params![id, user],
                        )
                        .map(|n| n as i64)
                        .map_err(|e| WriteFailure::Database(e.to_string())),
                });
            }
            tx.commit()?;
            Ok(results)
        })();
        if outcome.is_ok() {
            for (key, n) in added {
                *quota.counts.entry(key).or_default() += n;
            }
        }
        // Answer only now: every store in the batch is committed (or none is).
        for (i, op) in batch.into_iter().enumerate() {
            let result = match &outcome {
                Ok(results) => results[i].clone(),
                Err(e) => Err(WriteFailure::Database(e.to_string())),
            };
            let reply = match op {
                WriteOp::Store(_, reply) | WriteOp::MarkRead(_, _, reply) => reply,
            };
            let _ = reply.send(result);
        }
    }
}

impl WriteFailure {
    fn into_error(self, recipient: Option<&str>) -> InboxError {
        match self {
            Self::Quota => {
                InboxError::QuotaExceeded(recipient.unwrap_or("the computer name").to_owned())
            }
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
    })
}

const COLUMNS: &str = "id, received_at, from_name, to_alias, recipient_user, source, text, transport, broadcast, read";

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

    /// Lists messages, oldest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<StoredMessage>, InboxError> {
        let conn = self.0.reader.lock().expect("inbox reader lock");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM messages
             WHERE (?1 IS NULL OR recipient_user = ?1 OR recipient_user IS NULL)
               AND (?2 = 0 OR read = 0) AND id > ?3
             ORDER BY id LIMIT ?4"
        ))?;
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(
            params![
                filter.user,
                filter.unread_only,
                filter.after_id.unwrap_or(0),
                limit
            ],
            row_to_message,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts every message.
    pub fn count(&self) -> Result<usize, InboxError> {
        let conn = self.0.reader.lock().expect("inbox reader lock");
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// One message, if `user` may see it.
    pub fn get(&self, id: i64, user: Option<&str>) -> Result<Option<StoredMessage>, InboxError> {
        let conn = self.0.reader.lock().expect("inbox reader lock");
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM messages WHERE id = ?1
                     AND (?2 IS NULL OR recipient_user = ?2 OR recipient_user IS NULL)"
                ),
                params![id, user],
                row_to_message,
            )
            .optional()?)
    }

    /// Runs SQLite's integrity check; `Ok(())` when the database is sound.
    pub fn check_integrity(&self) -> Result<(), InboxError> {
        let conn = self.0.reader.lock().expect("inbox reader lock");
        let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(InboxError::Sqlite(rusqlite::Error::InvalidParameterName(
                verdict,
            )))
        }
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
        assert_eq!(inbox.list(&all()).unwrap().len(), 3);
        let alice = ListFilter {
            user: Some("alice".into()),
            ..all()
        };
        let texts: Vec<String> = inbox
            .list(&alice)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["to everyone", "for alice"]);
        assert!(inbox.get(c, Some("alice")).unwrap().is_none());
        assert!(!inbox.mark_read(c, Some("alice")).await.unwrap());
        assert!(inbox.mark_read(b, Some("alice")).await.unwrap());
        let unread = ListFilter {
            unread_only: true,
            ..all()
        };
        assert_eq!(inbox.list(&unread).unwrap().len(), 2);
        let after = ListFilter {
            after_id: Some(b),
            ..all()
        };
        assert_eq!(inbox.list(&after).unwrap()[0].id, c);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        inbox.check_integrity().unwrap();
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
        assert_eq!(reopened.count().unwrap(), 200);
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
        assert_eq!(reopened.count().unwrap(), 5);
    }
}
