//! The outgoing queue's rows (store-and-forward for names that cannot be
//! reached now): its changes, made by the writer, and its listings.

use rusqlite::{params, Connection};

use super::schema::execute_cached;
use super::writer::WriteFailure;
use super::{now_ms, Queued};

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

/// Makes room for one more entry of `owner` (who may hold `cap`), deleting
/// their oldest finished entries if needed; fails when all are waiting.
fn make_room(conn: &Connection, owner: &str, cap: u64) -> Result<(), WriteFailure> {
    use netsend_proto::queue::{room, Room};
    let (held, finished): (i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(state != 'queued'), 0) FROM outbox WHERE owner = ?1",
        )?
        .query_row(params![owner], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(WriteFailure::from)?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    match room(count(held), count(finished), cap) {
        Room::Free => Ok(()),
        Room::Full => Err(WriteFailure::QueueFull(cap)),
        Room::Evict(n) => execute_cached(
            conn,
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
                 WHERE owner = ?1 AND state != 'queued' ORDER BY id LIMIT ?2)",
            params![owner, i64::try_from(n).unwrap_or(i64::MAX)],
        )
        .map(drop)
        .map_err(WriteFailure::from),
    }
}

/// Carries out `op`; returns the new entry's id (`Add`) or how many entries
/// changed.
pub(super) fn change(conn: &Connection, op: &QueueOp) -> Result<i64, WriteFailure> {
    let now = now_ms();
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
            make_room(conn, owner, *max_per_owner)?;
            execute_cached(
                conn,
                "INSERT INTO outbox (created_at, owner, to_name, from_name, text, expires_at, attempts, last_error, next_try)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)",
                params![now, owner, to, from, text, expires_at, error, next_try],
            )
            .map_err(WriteFailure::from)?;
            Ok(conn.last_insert_rowid())
        }
        QueueOp::Delivered { id } => execute_cached(
            conn,
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, done_at = ?2,
                 last_error = NULL WHERE id = ?1 AND state = 'queued'",
            params![id, now],
        )
        .map(|n| n as i64)
        .map_err(WriteFailure::from),
        QueueOp::Failed {
            id,
            error,
            next_try,
        } => execute_cached(
            conn,
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
                 next_try = COALESCE(?3, next_try),
                 state = CASE WHEN ?3 IS NULL THEN 'expired' ELSE 'queued' END,
                 done_at = CASE WHEN ?3 IS NULL THEN ?4 ELSE NULL END
                 WHERE id = ?1 AND state = 'queued'",
            params![id, error, next_try, now],
        )
        .map(|n| n as i64)
        .map_err(WriteFailure::from),
        QueueOp::Cancel { id, owner } => execute_cached(
            conn,
            "UPDATE outbox SET state = 'cancelled', done_at = ?3
                 WHERE id = ?1 AND state = 'queued' AND (?2 IS NULL OR owner = ?2)",
            params![id, owner, now],
        )
        .map(|n| n as i64)
        .map_err(WriteFailure::from),
    }
}

/// The columns of [`row_to_queued`].
const QUEUE_COLUMNS: &str = "id, created_at, owner, to_name, from_name, text, expires_at, attempts, last_error, next_try, state, done_at";

/// A queue entry from a row of [`QUEUE_COLUMNS`].
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

/// At most `limit` entries of `owner` (root: `None`, everyone's) with ids
/// above `after_id`, oldest first.
pub(super) fn list(
    conn: &Connection,
    owner: Option<&str>,
    after_id: i64,
    limit: i64,
) -> rusqlite::Result<Vec<Queued>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {QUEUE_COLUMNS} FROM outbox WHERE (?1 IS NULL OR owner = ?1) AND id > ?2
         ORDER BY id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![owner, after_id, limit], row_to_queued)?;
    rows.collect()
}

/// Waiting entries due for another attempt at `now_ms`, at most 64.
pub(super) fn due(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<Queued>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {QUEUE_COLUMNS} FROM outbox WHERE state = 'queued' AND next_try <= ?1 ORDER BY next_try LIMIT 64"
    ))?;
    let rows = stmt.query_map(params![now_ms], row_to_queued)?;
    rows.collect()
}

/// How many entries still wait for delivery.
pub(super) fn depth(conn: &Connection) -> rusqlite::Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM outbox WHERE state = 'queued'")?
        .query_row([], |r| r.get(0))?;
    Ok(n.unsigned_abs())
}
