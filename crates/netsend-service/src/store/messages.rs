//! Received messages: what is stored and listed, each inbox's quota, and the
//! SQL that inserts, marks, deletes and reads messages.
//!
//! The writer calls the functions that change messages inside its batch's
//! transaction; the readers call the ones that read.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, StoredMessage, Transport};

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
    /// The host whose pinned key delivered it; `None`: unverified.
    pub verified_host: Option<String>,
    /// Unverified, but claiming a sender name this host uses verified.
    pub claimed_by: Option<String>,
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
    /// without case (checked by [`netsend_proto::search::Search::parse`]).
    pub search: Option<String>,
    /// Only messages with a smaller id.
    pub before_id: Option<i64>,
    /// Only messages received at this time or later, Unix ms.
    pub since_ms: Option<i64>,
    /// Only messages whose sender name is this, in any case.
    pub from: Option<String>,
    /// The newest `limit` messages rather than the oldest (still returned
    /// oldest first).
    pub newest: bool,
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

/// Messages per inbox (keyed by owning user; `None` is the shared inbox).
type InboxSizes = HashMap<Option<String>, u64>;

/// Messages added (positive) or removed (negative) per inbox by a batch.
pub(super) type SizeChanges = HashMap<Option<String>, i64>;

/// The writer's view of the quota: kept in memory so that checking it costs
/// no query, and updated only after a commit.
pub(super) struct Quota {
    limit: u64,
    counts: InboxSizes,
}

impl Quota {
    /// Each inbox's size as the database holds it, and at most `limit`
    /// messages per inbox (0: no quota).
    pub(super) fn load(conn: &Connection, limit: u64) -> rusqlite::Result<Self> {
        let mut stmt =
            conn.prepare("SELECT recipient_user, COUNT(*) FROM messages GROUP BY recipient_user")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut counts = InboxSizes::new();
        for row in rows {
            let (user, n) = row?;
            counts.insert(user, u64::try_from(n).unwrap_or(0));
        }
        Ok(Self { limit, counts })
    }

    /// Whether the inbox of `owner` takes one more message, counting what
    /// the batch so far (`pending`, not committed yet) added and removed.
    pub(super) fn admits(&self, owner: &Option<String>, pending: &SizeChanges) -> bool {
        if self.limit == 0 {
            return true;
        }
        let held = self
            .counts
            .get(owner)
            .copied()
            .unwrap_or(0)
            .saturating_add_signed(pending.get(owner).copied().unwrap_or(0));
        held < self.limit
    }

    /// Takes in the changes of a batch once it has committed.
    pub(super) fn committed(&mut self, changes: SizeChanges) {
        for (owner, n) in changes {
            let count = self.counts.entry(owner).or_default();
            *count = count.saturating_add_signed(n);
        }
    }
}

/// Inserts a message (one statement: it is stored whole or not at all) and
/// returns it as stored, built from what was inserted, not read back.
pub(super) fn insert(conn: &Connection, m: NewMessage) -> rusqlite::Result<StoredMessage> {
    let received_at = now_ms();
    conn.prepare_cached(
        "INSERT INTO messages (received_at, from_name, to_alias, recipient_user, source, text, transport, broadcast, verified_host, claimed_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        received_at,
        m.from,
        m.to,
        m.recipient_user,
        m.source,
        m.text,
        m.transport.as_str(),
        m.broadcast,
        m.verified_host,
        m.claimed_by
    ])?;
    Ok(StoredMessage {
        id: conn.last_insert_rowid(),
        received_at,
        from: m.from,
        to: m.to,
        recipient_user: m.recipient_user,
        source: m.source,
        text: m.text,
        transport: m.transport,
        broadcast: m.broadcast,
        read: false,
        shown_at: None,
        read_at: None,
        verified_host: m.verified_host,
        claimed_by: m.claimed_by,
    })
}

/// Marks message `id` read (`read`) or shown for `user` (root: `None`), if
/// they may see it; returns how many messages changed (0 or 1).
pub(super) fn mark(
    conn: &Connection,
    id: i64,
    user: Option<&str>,
    read: bool,
) -> rusqlite::Result<i64> {
    // The message's own columns keep the first reader's receipt (what
    // the sender is told); a user's own copy of the state of a shared
    // message goes to shared_reads.
    let set = if read {
        "read = 1, read_at = COALESCE(read_at, ?3), shown_at = COALESCE(shown_at, ?3)"
    } else {
        "shown_at = COALESCE(shown_at, ?3)"
    };
    let n = conn
        .prepare_cached(&format!(
            "UPDATE messages SET {set} WHERE id = ?1 AND {}",
            visible_to(2)
        ))?
        .execute(params![id, user, now_ms()])?;
    if let (true, Some(user)) = (n > 0, user) {
        shared_receipt(conn, id, user, read)?;
    }
    Ok(n as i64)
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
         CASE WHEN {shared} THEN r.read_at ELSE messages.read_at END,
         messages.verified_host, messages.claimed_by",
        read_by(n)
    )
}

/// Records user `?2`'s own receipt for the shared message `?1` at `?3`
/// (`read` also marks it shown); nothing for a user's own message.
fn shared_receipt(conn: &Connection, id: i64, user: &str, read: bool) -> rusqlite::Result<usize> {
    let read_at = if read { "?3" } else { "NULL" };
    conn.prepare_cached(&format!(
        "INSERT INTO shared_reads (message_id, user, shown_at, read_at)
         SELECT id, ?2, ?3, {read_at} FROM messages WHERE id = ?1 AND recipient_user IS NULL
         ON CONFLICT (message_id, user) DO UPDATE SET
           shown_at = COALESCE(shown_at, excluded.shown_at),
           read_at = COALESCE(read_at, excluded.read_at)"
    ))?
    .execute(params![id, user, now_ms()])
}

/// Deletes (or, a shared message for an ordinary user, hides) what `d`
/// names, noting inbox size changes; returns how many messages it touched.
pub(super) fn delete(
    conn: &Connection,
    d: &Deletion,
    changes: &mut SizeChanges,
) -> rusqlite::Result<i64> {
    let mut targets: Vec<(i64, Option<String>)> = Vec::new();
    {
        let mut by_id = conn.prepare_cached(&format!(
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
            let mut read = conn.prepare_cached(&format!(
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
            forget(conn, *id)?;
            *changes.entry(owner.clone()).or_default() -= 1;
        } else {
            conn.prepare_cached("INSERT OR IGNORE INTO hidden (message_id, user) VALUES (?1, ?2)")?
                .execute(params![id, d.user])?;
        }
    }
    Ok(targets.len() as i64)
}

/// Deletes a message with what each user recorded about it.
pub(super) fn forget(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    for sql in [
        "DELETE FROM messages WHERE id = ?1",
        "DELETE FROM hidden WHERE message_id = ?1",
        "DELETE FROM shared_reads WHERE message_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute(params![id])?;
    }
    Ok(())
}

/// A message from a row of [`COLUMNS`] (or [`columns_for`]).
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
        verified_host: row.get(12)?,
        claimed_by: row.get(13)?,
    })
}

/// The columns of [`row_to_message`], as stored.
const COLUMNS: &str = "id, received_at, from_name, to_alias, recipient_user, source, text, transport, broadcast, read, shown_at, read_at, verified_host, claimed_by";

/// The condition "`filter` selects this message", over
/// [`with_receipts_of`]`(1)`, with the parameters of [`filter_params`].
fn matching() -> String {
    format!(
        "{} AND (?2 = 0 OR {} = 0) AND messages.id > ?3
           AND (?5 IS NULL OR messages.id IN (SELECT rowid FROM messages_fts
                WHERE messages_fts MATCH ?5 AND rowid > ?3)
                OR (messages.id > (SELECT indexed_upto FROM fts_progress)
                    AND (instr(casefold(from_name), ?7) OR instr(casefold(to_alias), ?7)
                         OR instr(casefold(text), ?7))))
           AND (?6 IS NULL OR instr(casefold(from_name), ?6)
                OR instr(casefold(to_alias), ?6) OR instr(casefold(text), ?6))
           AND (?8 IS NULL OR messages.id < ?8) AND (?9 IS NULL OR messages.received_at >= ?9)
           AND (?10 IS NULL OR upper(messages.from_name) = upper(?10))",
        visible_to(1),
        read_by(1)
    )
}

/// The parameters of [`matching`] (`?4` is the limit).
fn filter_params(
    filter: &ListFilter,
    indexed: Option<&str>,
    scan: Option<&str>,
    after_id: i64,
    limit: i64,
) -> impl rusqlite::Params {
    use rusqlite::types::Value;
    let text = |t: Option<&str>| Value::from(t.map(String::from));
    rusqlite::params_from_iter([
        Value::from(filter.user.clone()),
        Value::from(filter.unread_only),
        Value::from(after_id),
        Value::from(limit),
        text(indexed),
        text(scan),
        // Messages the index does not hold yet are scanned for the text.
        Value::from(
            indexed
                .and_then(netsend_proto::search::unquote)
                .map(|t| t.to_lowercase()),
        ),
        Value::from(filter.before_id),
        Value::from(filter.since_ms),
        Value::from(filter.from.clone()),
    ])
}

/// Messages that `filter` selects, oldest first; `indexed` is a full-text
/// query and `scan` a text to look for row by row ([`netsend_proto::search`]).
pub(super) fn list(
    conn: &Connection,
    filter: &ListFilter,
    indexed: Option<&str>,
    scan: Option<&str>,
) -> rusqlite::Result<Vec<StoredMessage>> {
    let order = if filter.newest { "DESC" } else { "ASC" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM {} WHERE {} ORDER BY messages.id {order} LIMIT ?4",
        columns_for(1),
        with_receipts_of(1),
        matching()
    ))?;
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let after_id = filter.after_id.unwrap_or(0);
    let rows = stmt.query_map(
        filter_params(filter, indexed, scan, after_id, limit),
        row_to_message,
    )?;
    let mut messages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    if filter.newest {
        messages.reverse();
    }
    Ok(messages)
}

/// How many messages `filter` selects, its ids and limit aside.
pub(super) fn count_matching(
    conn: &Connection,
    filter: &ListFilter,
    indexed: Option<&str>,
    scan: Option<&str>,
) -> rusqlite::Result<u64> {
    let all = ListFilter {
        before_id: None,
        ..filter.clone()
    };
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM {} WHERE {} AND ?4 = ?4",
            with_receipts_of(1),
            matching()
        ))?
        .query_row(filter_params(&all, indexed, scan, 0, 0), |r| r.get(0))?;
    Ok(n.unsigned_abs())
}

/// `user`'s own messages that are unread and were never shown, received at
/// `since_ms` or later, oldest first.
pub(super) fn pending(
    conn: &Connection,
    user: &str,
    since_ms: i64,
) -> rusqlite::Result<Vec<StoredMessage>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE recipient_user = ?1 AND read = 0
         AND shown_at IS NULL AND received_at >= ?2 ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![user, since_ms], row_to_message)?;
    rows.collect()
}

/// Message `id` as `user` (root: `None`) sees it, if they may.
pub(super) fn get(
    conn: &Connection,
    id: i64,
    user: Option<&str>,
) -> rusqlite::Result<Option<StoredMessage>> {
    conn.prepare_cached(&format!(
        "SELECT {} FROM {} WHERE messages.id = ?1 AND {}",
        columns_for(2),
        with_receipts_of(2),
        visible_to(2)
    ))?
    .query_row(params![id, user], row_to_message)
    .optional()
}

/// Every message, counted.
pub(super) fn count(conn: &Connection) -> rusqlite::Result<usize> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM messages")?
        .query_row([], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The sender names of verified messages, each with the host that first
/// used it verified, oldest first, at most `limit`.
pub(super) fn verified_senders(
    conn: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT from_name, verified_host FROM messages WHERE id IN
           (SELECT MIN(id) FROM messages WHERE verified_host IS NOT NULL GROUP BY upper(from_name))
         ORDER BY id LIMIT ?1",
    )?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    rows.collect()
}
