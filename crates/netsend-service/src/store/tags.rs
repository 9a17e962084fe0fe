//! Delivery tags a receiver remembers (see
//! [`netsend_proto::delivery_tag`]): `(source address, tag)` with the id
//! of the message it came with, so a sender's repeat is acknowledged
//! without being stored again. Kept for
//! [`netsend_proto::delivery_tag::REMEMBERED_FOR_MS`]; each new tag clears
//! the expired ones (an index on the time keeps that cheap).

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

/// Remembers that message `id` came with `key`, and forgets expired tags.
pub(super) fn remember(conn: &Connection, key: &str, id: i64, now_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM delivery_tags WHERE received_at < ?1")?
        .execute(params![now_ms.saturating_sub(REMEMBERED_FOR_MS)])?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO delivery_tags (key, message_id, received_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![key, id, now_ms])?;
    Ok(())
}
