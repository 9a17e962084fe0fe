//! The durable inbox: SQLite (WAL, `synchronous=FULL`) with one writer thread.
//!
//! [`InboxHandle::store`] returns only after the transaction holding the message
//! has committed, so the session driver can acknowledge the sender afterwards
//! and a crash never loses an acknowledged message. Messages queued at the same
//! time share one transaction (group commit) without giving up that promise.
//! Reads run on the reader threads of `readers`, never on the async
//! workers; searches use an FTS5 trigram index of sender, alias and text.
//!
//! # Layout
//!
//! - this file: the handle ([`Inbox::open`], [`InboxHandle`]) and its errors;
//! - `writer`: the writer thread, its operations and group commit;
//! - `readers`: the reader threads and their per-user caps;
//! - `schema`: the tables, their migrations, and how connections are opened;
//! - `messages`: received messages (types, insert, marks, deletion, listings)
//!   and each inbox's quota;
//! - `outbox`: the outgoing queue's rows; `sent`: the sent archive;
//! - `away`: each user's away message; `wins`: the WINS server's table;
//! - `tags`: the delivery tags of senders that may repeat a message;
//! - `retention`: what ages out.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use netsend_proto::search::{Search, SearchError};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};

mod away;
mod messages;
mod outbox;
mod readers;
mod retention;
mod schema;
mod sent;
mod tags;
#[cfg(test)]
mod tests;
mod wins;
mod writer;

pub use messages::{Deletion, ListFilter, NewMessage};
pub use netsend_control::types::{AwayState, Queued, SentRecord, StoredMessage, Transport};
pub use outbox::QueueOp;
pub use retention::Retention;
pub use sent::{NewSent, SentFilter, SentOp};

use writer::{Command, Reply, WriteOp};

/// Largest text stored (a message is at most a few KiB on the wire).
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// Why an inbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// SQLite failed.
    #[error("inbox database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// SQLite failed in the writer (the error is shared by every operation
    /// of a batch whose transaction failed).
    #[error("inbox database: {0}")]
    Write(Arc<rusqlite::Error>),
    /// The file or its directory could not be created.
    #[error("inbox file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The text is over [`MAX_TEXT_LEN`].
    #[error("message of {0} bytes is too large for the inbox")]
    TooLarge(usize),
    /// The writer has stopped.
    #[error("the inbox is closed")]
    Closed,
    /// The writer's queue is full (a change that cannot wait was refused).
    #[error("the inbox writer is busy")]
    Busy,
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
    /// The database says it is damaged (`PRAGMA integrity_check`).
    #[error("inbox database is damaged: {0}")]
    Damaged(String),
    /// The message's delivery tag came with the stored message of this id:
    /// a sender's repeat, already stored.
    #[error("already stored as message {0} (a repeat of the same delivery tag)")]
    Repeat(i64),
}

struct Inner {
    writer: mpsc::Sender<Command>,
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
        let mut writer_conn = schema::connect(path)?;
        schema::migrate(&mut writer_conn)?;
        let quota = messages::Quota::load(&writer_conn, quota)?;
        let readers = readers::Readers::start(path, schema::connect)?;
        let (tx, rx) = mpsc::channel(writer::QUEUE_LEN);
        let (stored_tx, stored) = watch::channel(0);
        let thread = std::thread::Builder::new()
            .name("inbox-writer".into())
            .spawn(move || writer::run(writer_conn, rx, quota, &stored_tx))
            .map_err(io)?;
        Ok(InboxHandle(Arc::new(Inner {
            writer: tx,
            stored,
            readers,
            thread: Mutex::new(Some(thread)),
        })))
    }
}

impl InboxHandle {
    /// Stores a message; returns it as stored (its id and time of receipt
    /// with it) once the transaction holding it has committed.
    pub async fn store(&self, message: NewMessage) -> Result<StoredMessage, InboxError> {
        self.store_with(message, None).await
    }

    /// [`Self::store`] for a message that came with a delivery tag
    /// (`key`: see [`netsend_proto::delivery_tag::DeliveryTag::key`]): a
    /// repeat of a message stored with the same key is refused with
    /// [`InboxError::Repeat`], so the sender is acknowledged and nothing is
    /// shown twice.
    pub async fn store_once(
        &self,
        message: NewMessage,
        key: String,
    ) -> Result<StoredMessage, InboxError> {
        self.store_with(message, Some(key)).await
    }

    /// Stores a message of at most [`MAX_TEXT_LEN`] bytes, once per tag
    /// key when it has one.
    async fn store_with(
        &self,
        message: NewMessage,
        key: Option<String>,
    ) -> Result<StoredMessage, InboxError> {
        if message.text.len() > MAX_TEXT_LEN {
            return Err(InboxError::TooLarge(message.text.len()));
        }
        self.write(|reply| WriteOp::Store(message, key, reply))
            .await
    }

    /// Marks a message read; `user` limits it to messages that user may see.
    pub async fn mark_read(&self, id: i64, user: Option<&str>) -> Result<bool, InboxError> {
        let user = user.map(String::from);
        self.write(|reply| WriteOp::MarkRead(id, user, reply))
            .await
            .map(|n| n > 0)
    }

    /// Records that a message was shown (on a terminal or a desktop); `user`
    /// limits it to messages that user may see. Returns whether it exists.
    pub async fn mark_shown(&self, id: i64, user: Option<&str>) -> Result<bool, InboxError> {
        let user = user.map(String::from);
        self.write(|reply| WriteOp::MarkShown(id, user, reply))
            .await
            .map(|n| n > 0)
    }

    /// Deletes messages (see [`Deletion`]); returns how many were deleted or
    /// hidden.
    pub async fn delete(&self, deletion: Deletion) -> Result<u64, InboxError> {
        self.write(|reply| WriteOp::Delete(deletion, reply))
            .await
            .map(i64::unsigned_abs)
    }

    /// Applies retention; returns how many messages, queue entries and sent
    /// records were removed.
    pub async fn prune(&self, retention: Retention) -> Result<u64, InboxError> {
        self.write(|reply| WriteOp::Prune(retention, reply))
            .await
            .map(i64::unsigned_abs)
    }

    /// Changes the record of sent messages; returns the new record's id
    /// (`Record`) or how many records a receipt updated.
    pub async fn sent_change(&self, op: SentOp) -> Result<i64, InboxError> {
        self.write(|reply| WriteOp::Sent(op, reply)).await
    }

    /// Sets `user`'s away message (`state`), or ends it (`None`), durably.
    pub async fn set_away(&self, user: &str, state: Option<AwayState>) -> Result<i64, InboxError> {
        let user = user.to_owned();
        self.write(|reply| WriteOp::Away(user, state, reply)).await
    }

    /// Hands a change of the WINS server's table to the writer now (so
    /// changes are committed in the order they are made); the future
    /// completes once it is committed.
    pub fn wins_change(
        &self,
        change: netsend_proto::wins_server::Change,
    ) -> impl std::future::Future<Output = Result<i64, InboxError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let queued = self
            .0
            .writer
            .try_send(Command::Write(WriteOp::Wins(change, reply)));
        async move {
            match queued {
                Ok(()) => Ok(answer.await.map_err(|_| InboxError::Closed)??),
                Err(mpsc::error::TrySendError::Full(_)) => Err(InboxError::Busy),
                Err(mpsc::error::TrySendError::Closed(_)) => Err(InboxError::Closed),
            }
        }
    }

    /// The WINS server's table as committed.
    pub async fn wins_records(
        &self,
    ) -> Result<Vec<netsend_proto::wins_server::Record>, InboxError> {
        self.read(None, |conn| Ok(wins::load(conn)?)).await
    }

    /// Every away message in force.
    pub async fn away(&self) -> Result<Vec<AwayState>, InboxError> {
        self.read(None, |conn| Ok(away::all(conn)?)).await
    }

    /// Changes the outgoing queue; returns the new entry's id (`Add`) or how
    /// many entries changed.
    pub async fn queue(&self, op: QueueOp) -> Result<i64, InboxError> {
        self.write(|reply| WriteOp::Queue(op, reply)).await
    }

    /// Hands `op` to the writer and waits for its answer, which comes after
    /// the transaction holding it has committed.
    async fn write<T>(&self, op: impl FnOnce(Reply<T>) -> WriteOp) -> Result<T, InboxError> {
        let (reply, answer) = oneshot::channel();
        self.0
            .writer
            .send(Command::Write(op(reply)))
            .await
            .map_err(|_| InboxError::Closed)?;
        Ok(answer.await.map_err(|_| InboxError::Closed)??)
    }

    /// Completes once the writer has committed everything handed to it
    /// before: the writer thread is alive and making progress.
    pub async fn ping(&self) -> Result<(), InboxError> {
        let (answer, answered) = oneshot::channel();
        self.0
            .writer
            .send(Command::Ping(answer))
            .await
            .map_err(|_| InboxError::Closed)?;
        answered.await.map_err(|_| InboxError::Closed)
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
        Ok(self.list_counted(filter, false).await?.0)
    }

    /// Lists messages, oldest first; with `count`, also how many match in
    /// all.
    pub async fn list_counted(
        &self,
        filter: &ListFilter,
        count: bool,
    ) -> Result<(Vec<StoredMessage>, Option<u64>), InboxError> {
        let (indexed, scan) = match Search::parse(filter.search.as_deref().unwrap_or(""))? {
            Search::All => (None, None),
            Search::Scan(s) => (None, Some(s)),
            Search::Indexed(q) => (Some(q), None),
        };
        let filter = filter.clone();
        self.read(filter.user.clone().as_deref(), move |conn| {
            let (indexed, scan) = (indexed.as_deref(), scan.as_deref());
            let messages = messages::list(conn, &filter, indexed, scan)?;
            let total = count
                .then(|| messages::count_matching(conn, &filter, indexed, scan))
                .transpose()?;
            Ok((messages, total))
        })
        .await
    }

    /// A page of the sent archive, oldest first; with `count`, also how many
    /// records match in all. The search text is checked as the inbox's.
    pub async fn sent_list(
        &self,
        filter: &SentFilter,
        count: bool,
    ) -> Result<(Vec<SentRecord>, Option<u64>), InboxError> {
        let mut filter = filter.clone();
        filter.search = match Search::parse(filter.search.as_deref().unwrap_or(""))? {
            Search::All => None,
            Search::Scan(s) => Some(s),
            Search::Indexed(q) => netsend_proto::search::unquote(&q),
        }
        .map(|s| s.to_lowercase());
        self.read(filter.owner.clone().as_deref(), move |conn| {
            let records = sent::list(conn, &filter)?;
            let total = count.then(|| sent::count(conn, &filter)).transpose()?;
            Ok((records, total))
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
            Ok(messages::pending(conn, &user, since_ms)?)
        })
        .await
    }

    /// A sent message and its receipts, if `owner` (root: `None`) sent it.
    pub async fn sent(
        &self,
        id: i64,
        owner: Option<&str>,
    ) -> Result<Option<SentRecord>, InboxError> {
        let owner = owner.map(String::from);
        self.read(owner.clone().as_deref(), move |conn| {
            Ok(sent::get(conn, id, owner.as_deref())?)
        })
        .await
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
            Ok(outbox::list(conn, owner.as_deref(), after_id, limit)?)
        })
        .await
    }

    /// Queued entries due for another attempt at `now_ms`.
    pub async fn due(&self, now_ms: i64) -> Result<Vec<Queued>, InboxError> {
        self.read(None, move |conn| Ok(outbox::due(conn, now_ms)?))
            .await
    }

    /// Counts the outgoing queue's entries still waiting for delivery.
    pub async fn queue_depth(&self) -> Result<u64, InboxError> {
        self.read(None, |conn| Ok(outbox::depth(conn)?)).await
    }

    /// Counts every message.
    pub async fn count(&self) -> Result<usize, InboxError> {
        self.read(None, |conn| Ok(messages::count(conn)?)).await
    }

    /// The sender names verified messages used, each with the host that
    /// first used it, at most `limit` (for the trust marks after a restart).
    pub async fn verified_senders(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, String)>, InboxError> {
        self.read(None, move |conn| {
            Ok(messages::verified_senders(conn, limit)?)
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
            Ok(messages::get(conn, id, user.as_deref())?)
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
                Err(InboxError::Damaged(verdict))
            }
        })
        .await
    }

    /// Stops the writer once everything queued before this call is committed
    /// and answered, and waits for its thread to end. Writes queued after it
    /// fail with [`InboxError::Closed`].
    pub async fn close(&self) {
        let thread = self.0.thread.lock().expect("inbox thread lock").take();
        let Some(thread) = thread else {
            return;
        };
        // The writer takes commands in order: everything sent before this
        // is committed before it stops. (It is gone already if it panicked.)
        let _ = self.0.writer.send(Command::Close).await;
        if tokio::task::spawn_blocking(move || thread.join())
            .await
            .is_err()
        {
            tracing::warn!("the inbox writer could not be joined");
        }
    }
}
