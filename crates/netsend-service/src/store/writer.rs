//! The writer: one thread that owns the inbox's only writing connection and
//! makes every change, in batches.
//!
//! **Group commit.** The writer takes every operation queued at the moment
//! (at most [`MAX_BATCH`]) into one transaction, and answers each, on its
//! own oneshot channel, only after that transaction's COMMIT has returned.
//! With `synchronous=FULL` the commit is on disk by then, so a message is
//! never acknowledged before it is durable, and the cost of the sync is
//! shared by everything the batch holds.
//!
//! **A failed operation fails alone.** A store is one INSERT, which SQLite
//! undoes whole when it fails; every other operation runs in a savepoint of
//! its own, rolled back if any of its statements fails, and the inbox size
//! changes it noted go with it. The rest of the batch commits. Only when the
//! transaction itself is lost (BEGIN or COMMIT fails, or SQLite rolls the
//! whole transaction back on an I/O error) does every operation of the batch
//! fail, and then none of it was committed.
//!
//! **Closing.** [`Command::Close`] ends the thread once everything queued
//! before it is committed and answered; what was queued after it is dropped
//! unanswered, so its callers get [`InboxError::Closed`].

use std::sync::Arc;

use rusqlite::{Connection, Transaction};
use tokio::sync::{mpsc, oneshot, watch};

use super::messages::{self, NewMessage, Quota, SizeChanges};
use super::wins;
use super::StoredMessage;
use super::{
    away, outbox, retention, sent, tags, AwayState, Deletion, InboxError, QueueOp, Retention,
    SentOp,
};

/// Operations waiting for the writer before callers are made to wait.
pub(super) const QUEUE_LEN: usize = 1024;
/// Most operations committed in one transaction.
const MAX_BATCH: usize = 128;

/// Why the writer could not carry out one operation.
#[derive(Debug, Clone)]
pub(super) enum WriteFailure {
    /// The inbox of this user (`None`: the shared one) is full.
    Quota(Option<String>),
    /// The sender's share of the queue is full of waiting entries.
    QueueFull(u64),
    /// SQLite failed (shared by every operation of a batch that failed whole).
    Database(Arc<rusqlite::Error>),
    /// The message's delivery tag came with this stored message already.
    Repeat(i64),
}

impl From<rusqlite::Error> for WriteFailure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(Arc::new(e))
    }
}

impl From<WriteFailure> for InboxError {
    fn from(failure: WriteFailure) -> Self {
        match failure {
            WriteFailure::Quota(owner) => {
                Self::QuotaExceeded(owner.unwrap_or_else(|| "the computer name".to_owned()))
            }
            WriteFailure::QueueFull(cap) => Self::QueueFull(cap),
            WriteFailure::Database(e) => Self::Write(e),
            WriteFailure::Repeat(id) => Self::Repeat(id),
        }
    }
}

/// Where the writer answers an operation.
pub(super) type Reply<T> = oneshot::Sender<Result<T, WriteFailure>>;

/// A change, and where to answer it.
pub(super) enum WriteOp {
    /// Store a message, once per delivery tag key when it has one;
    /// answered with it as stored.
    Store(NewMessage, Option<String>, Reply<StoredMessage>),
    /// Mark a message read for a user (root: `None`).
    MarkRead(i64, Option<String>, Reply<i64>),
    /// Mark a message shown for a user (root: `None`).
    MarkShown(i64, Option<String>, Reply<i64>),
    /// Delete or hide messages.
    Delete(Deletion, Reply<i64>),
    /// Apply retention.
    Prune(Retention, Reply<i64>),
    /// Change the outgoing queue.
    Queue(QueueOp, Reply<i64>),
    /// Change the sent records.
    Sent(SentOp, Reply<i64>),
    /// Set (or with `None` end) a user's away message.
    Away(String, Option<AwayState>, Reply<i64>),
    /// Change the WINS server's table.
    Wins(netsend_proto::wins_server::Change, Reply<i64>),
}

/// What the writer's channel carries.
pub(super) enum Command {
    /// A change to make.
    Write(WriteOp),
    /// Commit what came before, then stop.
    Close,
    /// Answer once what came before is committed (a liveness check).
    Ping(tokio::sync::oneshot::Sender<()>),
}

/// An operation carried out in the open transaction, to be answered once
/// the transaction is over.
enum Answer {
    Stored(Reply<StoredMessage>, Result<StoredMessage, WriteFailure>),
    Changed(Reply<i64>, Result<i64, WriteFailure>),
}

impl Answer {
    /// The message id a successful store was given.
    fn stored_id(&self) -> Option<i64> {
        match self {
            Self::Stored(_, Ok(m)) => Some(m.id),
            _ => None,
        }
    }

    /// Why the operation failed, if it did.
    fn failure(&self) -> Option<WriteFailure> {
        match self {
            Self::Stored(_, Err(f)) | Self::Changed(_, Err(f)) => Some(f.clone()),
            _ => None,
        }
    }

    /// Answers with the outcome, unless the batch (`commit`) failed.
    fn send(self, commit: &Result<(), WriteFailure>) {
        match self {
            Self::Stored(reply, outcome) => {
                let _ = reply.send(commit.clone().and(outcome));
            }
            Self::Changed(reply, outcome) => {
                let _ = reply.send(commit.clone().and(outcome));
            }
        }
    }
}

impl WriteOp {
    /// The answer of an operation that was not carried out.
    fn refuse(self, failure: WriteFailure) -> Answer {
        match self {
            Self::Store(_, _, reply) => Answer::Stored(reply, Err(failure)),
            Self::MarkRead(_, _, reply)
            | Self::MarkShown(_, _, reply)
            | Self::Delete(_, reply)
            | Self::Prune(_, reply)
            | Self::Queue(_, reply)
            | Self::Sent(_, reply)
            | Self::Away(_, _, reply)
            | Self::Wins(_, reply) => Answer::Changed(reply, Err(failure)),
        }
    }
}

/// The writer thread: commits batches until [`Command::Close`] or until
/// every handle is gone. `stored` follows the newest message id committed.
pub(super) fn run(
    mut conn: Connection,
    mut commands: mpsc::Receiver<Command>,
    mut quota: Quota,
    stored: &watch::Sender<i64>,
) {
    let mut closing = false;
    index_while_idle(&mut conn, &commands);
    while !closing {
        let Some(first) = commands.blocking_recv() else {
            return;
        };
        let mut batch = Vec::new();
        let mut pings = Vec::new();
        let mut next = Some(first);
        while let Some(command) = next {
            match command {
                Command::Write(op) => batch.push(op),
                Command::Ping(answer) => pings.push(answer),
                Command::Close => {
                    closing = true;
                    break;
                }
            }
            if batch.len() == MAX_BATCH {
                break;
            }
            next = commands.try_recv().ok();
        }
        commit_batch(&mut conn, batch, &mut quota, stored);
        for answer in pings {
            let _ = answer.send(());
        }
        if !closing {
            index_while_idle(&mut conn, &commands);
        }
    }
}

/// Brings the full-text index up to date a chunk at a time while no
/// operation waits: messages are acknowledged without waiting for it, and
/// searches scan what it does not hold yet.
fn index_while_idle(conn: &mut Connection, commands: &mpsc::Receiver<Command>) {
    while commands.is_empty() {
        match super::schema::index_pending(conn) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %netsend_proto::display::LogSafe(&e), "cannot update the search index");
                return;
            }
        }
    }
}

/// Carries out `batch` in one transaction and answers every operation after
/// it committed (or failed).
fn commit_batch(
    conn: &mut Connection,
    batch: Vec<WriteOp>,
    quota: &mut Quota,
    stored: &watch::Sender<i64>,
) {
    if batch.is_empty() {
        return;
    }
    let mut changes = SizeChanges::new();
    let mut answers = Vec::with_capacity(batch.len());
    let mut tx = conn.transaction().map_err(WriteFailure::from);
    for op in batch {
        let open = match &mut tx {
            Ok(open) => open,
            Err(failure) => {
                answers.push(op.refuse(failure.clone()));
                continue;
            }
        };
        let answer = apply(open, op, quota, &mut changes);
        if open.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, a
            // full disk): nothing of this batch will be committed.
            let failure = answer.failure().unwrap_or_else(|| {
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT_ROLLBACK),
                    None,
                )
                .into()
            });
            tx = Err(failure);
        }
        answers.push(answer);
    }
    let commit = tx.and_then(|tx| tx.commit().map_err(WriteFailure::from));
    if commit.is_ok() {
        quota.committed(changes);
        if let Some(id) = answers.iter().filter_map(Answer::stored_id).max() {
            stored.send_if_modified(|latest| {
                let newer = id > *latest;
                *latest = (*latest).max(id);
                newer
            });
        }
    }
    // Answer only now: every change in the batch is committed (or none is).
    for answer in answers {
        answer.send(&commit);
    }
}

/// Carries out one operation inside the batch's transaction, noting inbox
/// size changes for the quota.
fn apply(
    tx: &mut Transaction<'_>,
    op: WriteOp,
    quota: &Quota,
    changes: &mut SizeChanges,
) -> Answer {
    match op {
        WriteOp::Store(message, None, reply) => {
            let outcome = if quota.admits(&message.recipient_user, changes) {
                messages::insert(tx, message)
                    .inspect(|stored| {
                        *changes.entry(stored.recipient_user.clone()).or_default() += 1;
                    })
                    .map_err(WriteFailure::from)
            } else {
                Err(WriteFailure::Quota(message.recipient_user))
            };
            Answer::Stored(reply, outcome)
        }
        WriteOp::Store(message, Some(key), reply) => {
            let now = super::now_ms();
            // A repeat is answered before the quota: it takes no room.
            let outcome = match tags::repeat_of(tx, &key, now) {
                Ok(Some(id)) => Err(WriteFailure::Repeat(id)),
                Err(e) => Err(e.into()),
                Ok(None) if !quota.admits(&message.recipient_user, changes) => {
                    Err(WriteFailure::Quota(message.recipient_user))
                }
                // The message and its tag in one savepoint: both or neither.
                Ok(None) => alone(tx, changes, |c, own| {
                    let stored = messages::insert(c, message)?;
                    tags::remember(c, &key, stored.id, now)?;
                    *own.entry(stored.recipient_user.clone()).or_default() += 1;
                    Ok(stored)
                }),
            };
            Answer::Stored(reply, outcome)
        }
        WriteOp::MarkRead(id, user, reply) => Answer::Changed(
            reply,
            alone(tx, changes, |c, _| {
                Ok(messages::mark(c, id, user.as_deref(), true)?)
            }),
        ),
        WriteOp::MarkShown(id, user, reply) => Answer::Changed(
            reply,
            alone(tx, changes, |c, _| {
                Ok(messages::mark(c, id, user.as_deref(), false)?)
            }),
        ),
        WriteOp::Delete(deletion, reply) => Answer::Changed(
            reply,
            alone(tx, changes, |c, own| {
                Ok(messages::delete(c, &deletion, own)?)
            }),
        ),
        WriteOp::Prune(rules, reply) => Answer::Changed(
            reply,
            alone(tx, changes, |c, own| Ok(retention::prune(c, rules, own)?)),
        ),
        WriteOp::Queue(op, reply) => {
            Answer::Changed(reply, alone(tx, changes, |c, _| outbox::change(c, &op)))
        }
        WriteOp::Sent(op, reply) => {
            Answer::Changed(reply, alone(tx, changes, |c, _| Ok(sent::change(c, &op)?)))
        }
        WriteOp::Away(user, text, reply) => Answer::Changed(
            reply,
            alone(tx, changes, |c, _| Ok(away::set(c, &user, text.as_ref())?)),
        ),
        WriteOp::Wins(change, reply) => Answer::Changed(
            reply,
            alone(tx, changes, |c, _| Ok(wins::change(c, &change)?)),
        ),
    }
}

/// Runs `change` in a savepoint of its own: if it fails, what it wrote and
/// the size changes it noted are undone, and the rest of the batch stands.
fn alone<T>(
    tx: &mut Transaction<'_>,
    changes: &mut SizeChanges,
    change: impl FnOnce(&Connection, &mut SizeChanges) -> Result<T, WriteFailure>,
) -> Result<T, WriteFailure> {
    let savepoint = tx.savepoint()?;
    let mut own = SizeChanges::new();
    let value = change(&savepoint, &mut own)?;
    savepoint.commit()?;
    for (owner, n) in own {
        *changes.entry(owner).or_default() += n;
    }
    Ok(value)
}
