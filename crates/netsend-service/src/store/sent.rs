//! The sent archive: the messages this host's users sent (directed,
//! broadcast, `/USERS`, queued, automatic answers), with their outcome and
//! the receipts their recipients returned: its changes, made by the
//! writer, and look-ups.

use rusqlite::{params, Connection, OptionalExtension};

use super::schema::execute_cached;
use super::{now_ms, SentRecord};
use netsend_control::types::SentKind;

/// A sent message to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSent {
    /// The Unix user who sent it.
    pub owner: String,
    /// The recipient name (a domain for a broadcast, `/USERS`).
    pub to: String,
    /// The sender name.
    pub from: String,
    /// The recipient host's IP address (the domain of a broadcast; empty
    /// when nobody was reached).
    pub address: String,
    /// The text as sent.
    pub text: String,
    /// What kind of send.
    pub kind: SentKind,
    /// What became of it (for a queued one, its queue entry tells).
    pub outcome: String,
    /// The queue entry of a queued message.
    pub queue_id: Option<i64>,
    /// Records kept for `owner`: older ones beyond this are deleted.
    pub keep: u64,
}

/// A change to the record of sent messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentOp {
    /// A message was sent (or tried, or queued).
    Record(NewSent),
    /// A receipt came from `address`: it applies to the newest matching
    /// message sent there that has no such receipt yet.
    Receipt {
        /// Where it came from.
        address: String,
        /// The receipt.
        receipt: netsend_proto::receipt::Receipt,
    },
}

/// Which sent records to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SentFilter {
    /// Whose: `None` is everyone's (root).
    pub owner: Option<String>,
    /// Only records with a larger id.
    pub after_id: Option<i64>,
    /// Only records with a smaller id.
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: usize,
    /// The newest `limit` rather than the oldest (still returned oldest
    /// first).
    pub newest: bool,
    /// Only records whose recipient, sender or text contains this (already
    /// folded to lower case).
    pub search: Option<String>,
    /// Only records sent to this name, in any case.
    pub to: Option<String>,
    /// Only records sent at this time or later.
    pub since_ms: Option<i64>,
}

/// Carries out `op`; returns the new record's id (`Record`) or how many
/// records a receipt updated.
pub(super) fn change(conn: &Connection, op: &SentOp) -> rusqlite::Result<i64> {
    match op {
        SentOp::Record(r) => {
            execute_cached(
                conn,
                "INSERT INTO sent (sent_at, owner, to_name, from_name, address, digest,
                                   text, kind, outcome, queue_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    now_ms(),
                    r.owner,
                    r.to,
                    r.from,
                    r.address,
                    netsend_proto::receipt::digest(&r.text),
                    r.text,
                    r.kind.as_str(),
                    r.outcome,
                    r.queue_id
                ],
            )?;
            let id = conn.last_insert_rowid();
            // The owner's records beyond `keep`, oldest first, go.
            execute_cached(
                conn,
                "DELETE FROM sent WHERE owner = ?1 AND id <= (
                    SELECT id FROM sent WHERE owner = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![r.owner, i64::try_from(r.keep).unwrap_or(i64::MAX)],
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
            execute_cached(
                conn,
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

/// The columns of [`row_to_record`]; a queued message's outcome is its
/// queue entry's state now (`queued` while it waits).
const COLUMNS: &str = "s.id, s.sent_at, s.to_name, s.from_name, s.address, s.shown_at,
    s.read_at, s.owner, s.text, s.kind,
    CASE WHEN s.queue_id IS NULL THEN s.outcome ELSE COALESCE(o.state, s.outcome) END";

/// `sent` as `s` with each queued record's queue entry as `o`.
const FROM: &str = "sent s LEFT JOIN outbox o ON o.id = s.queue_id";

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<SentRecord> {
    Ok(SentRecord {
        id: r.get(0)?,
        sent_at: r.get(1)?,
        to: r.get(2)?,
        from: r.get(3)?,
        address: r.get(4)?,
        shown_at: r.get(5)?,
        read_at: r.get(6)?,
        owner: r.get(7)?,
        text: r.get(8)?,
        kind: SentKind::parse(&r.get::<_, String>(9)?),
        outcome: r.get(10)?,
    })
}

/// Sent record `id`, if `owner` (root: `None`) sent it.
pub(super) fn get(
    conn: &Connection,
    id: i64,
    owner: Option<&str>,
) -> rusqlite::Result<Option<SentRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE s.id = ?1 AND (?2 IS NULL OR s.owner = ?2)"
    ))?
    .query_row(params![id, owner], row_to_record)
    .optional()
}

/// The condition of [`SentFilter`] (its parameters `?1`..`?6`).
const MATCHES: &str = "(?1 IS NULL OR s.owner = ?1) AND s.id > ?2 AND (?3 IS NULL OR s.id < ?3)
    AND (?4 IS NULL OR instr(casefold(s.to_name), ?4) OR instr(casefold(s.from_name), ?4)
         OR instr(casefold(s.text), ?4))
    AND (?5 IS NULL OR upper(s.to_name) = upper(?5)) AND (?6 IS NULL OR s.sent_at >= ?6)";

/// The records `filter` selects, oldest first.
pub(super) fn list(conn: &Connection, filter: &SentFilter) -> rusqlite::Result<Vec<SentRecord>> {
    let order = if filter.newest { "DESC" } else { "ASC" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE {MATCHES} ORDER BY s.id {order} LIMIT ?7"
    ))?;
    let rows = stmt.query_map(
        params![
            filter.owner,
            filter.after_id.unwrap_or(0),
            filter.before_id,
            filter.search,
            filter.to,
            filter.since_ms,
            i64::try_from(filter.limit).unwrap_or(i64::MAX)
        ],
        row_to_record,
    )?;
    let mut records = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    if filter.newest {
        records.reverse();
    }
    Ok(records)
}

/// How many records `filter` selects, its ids and limit aside.
pub(super) fn count(conn: &Connection, filter: &SentFilter) -> rusqlite::Result<u64> {
    let n: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM {FROM} WHERE {MATCHES}"))?
        .query_row(
            params![
                filter.owner,
                0,
                None::<i64>,
                filter.search,
                filter.to,
                filter.since_ms
            ],
            |r| r.get(0),
        )?;
    Ok(n.unsigned_abs())
}
