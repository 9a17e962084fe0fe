//! Delivery tags a receiver remembers (see
//! [`netsend_proto::delivery_tag`]): `(source address, tag)` with the id
//! of the message it came with, so a sender's repeat is acknowledged
//! without being stored again. Believed for
//! [`netsend_proto::delivery_tag::REMEMBERED_FOR_MS`]; retention deletes
//! the expired ones (an index on the time keeps that cheap), off the
//! receive path.

use netsend_proto::delivery_tag::REMEMBERED_FOR_MS;
use rusqlite::{params, Connection, OptionalExtension};

/// The message stored earlier with `key`, if it is still remembered.
pub(super) fn repeat_of(
    conn: &Connection,
    key: &str,
    now_ms: i64,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT message_id FROM delivery_tags WHERE key = ?1 AND received_at >= ?2",
    )?
    .query_row(
        params![key, now_ms.saturating_sub(REMEMBERED_FOR_MS)],
        |r| r.get(0),
    )
    .optional()
}

/// Remembers that message `id` came with `key`.
pub(super) fn remember(conn: &Connection, key: &str, id: i64, now_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO delivery_tags (key, message_id, received_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![key, id, now_ms])?;
    Ok(())
}

/// Deletes the tags no longer believed at `now_ms`; returns how many.
pub(super) fn forget_expired(conn: &Connection, now_ms: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM delivery_tags WHERE received_at < ?1")?
        .execute(params![now_ms.saturating_sub(REMEMBERED_FOR_MS)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_believed_for_its_time_and_then_forgotten() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let (old, new) = ("192.0.2.1/01", "192.0.2.1/02");
        remember(&conn, old, 1, 1_000).unwrap();
        remember(&conn, new, 2, 2_000).unwrap();
        let later = 1_000 + REMEMBERED_FOR_MS;
        assert_eq!(repeat_of(&conn, old, later).unwrap(), Some(1));
        // Past its time it is no longer a repeat, deleted or not.
        assert_eq!(repeat_of(&conn, old, later + 1).unwrap(), None);
        assert_eq!(forget_expired(&conn, later + 1).unwrap(), 1);
        assert_eq!(repeat_of(&conn, new, later + 1).unwrap(), Some(2));
        assert_eq!(forget_expired(&conn, later + 1).unwrap(), 0);
    }
}
