//! Retention: what ages out of the inbox, the outgoing queue, the sent
//! records and the delivery tags, and what an inbox over its size loses
//! first.

use rusqlite::{params, Connection};

use super::messages::{forget, SizeChanges};
use super::now_ms;
use super::schema::execute_cached;

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

/// Applies `r`, noting inbox size changes; returns how many messages,
/// queue entries and sent records were removed.
pub(super) fn prune(
    conn: &Connection,
    r: Retention,
    changes: &mut SizeChanges,
) -> rusqlite::Result<i64> {
    let mut doomed: Vec<(i64, Option<String>)> = Vec::new();
    if r.max_age_ms > 0 {
        let mut old =
            conn.prepare_cached("SELECT id, recipient_user FROM messages WHERE received_at < ?1")?;
        let cutoff = now_ms().saturating_sub(r.max_age_ms);
        for row in old.query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))? {
            doomed.push(row?);
        }
    }
    if r.max_per_inbox > 0 {
        let mut sizes = conn.prepare_cached(
            "SELECT recipient_user, COUNT(*) FROM messages GROUP BY recipient_user",
        )?;
        let over: Vec<(Option<String>, i64)> = sizes
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let limit = i64::try_from(r.max_per_inbox).unwrap_or(i64::MAX);
        // Read messages go first, then the oldest.
        let mut oldest = conn.prepare_cached(
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
        forget(conn, *id)?;
        *changes.entry(owner.clone()).or_default() -= 1;
    }
    let mut removed = doomed.len();
    let now = now_ms();
    if r.finished_max_age_ms > 0 {
        removed += execute_cached(
            conn,
            "DELETE FROM outbox WHERE state != 'queued' AND done_at < ?1",
            params![now.saturating_sub(r.finished_max_age_ms)],
        )?;
    }
    if r.sent_max_age_ms > 0 {
        removed += execute_cached(
            conn,
            "DELETE FROM sent WHERE sent_at < ?1",
            params![now.saturating_sub(r.sent_max_age_ms)],
        )?;
    }
    // Delivery tags past their time are no longer believed; not counted,
    // as they are no message, entry or record of anyone's.
    super::tags::forget_expired(conn, now)?;
    Ok(removed as i64)
}
