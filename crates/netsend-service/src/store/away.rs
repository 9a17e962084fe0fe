//! Each user's away message (`netsend away`), kept across restarts: its
//! change, made by the writer, and the look-up the service starts with.

use rusqlite::{params, Connection};

use super::schema::execute_cached;
use netsend_control::types::AwayState;

/// Sets `user`'s away message (`state`), or ends it (`None`).
pub(super) fn set(
    conn: &Connection,
    user: &str,
    state: Option<&AwayState>,
) -> rusqlite::Result<i64> {
    let n = match state {
        Some(state) => execute_cached(
            conn,
            "INSERT INTO away (user, text, since) VALUES (?1, ?2, ?3)
             ON CONFLICT (user) DO UPDATE SET text = excluded.text, since = excluded.since",
            params![user, state.text, state.since],
        )?,
        None => execute_cached(conn, "DELETE FROM away WHERE user = ?1", params![user])?,
    };
    Ok(n as i64)
}

/// Every away message, by user.
pub(super) fn all(conn: &Connection) -> rusqlite::Result<Vec<AwayState>> {
    let mut stmt = conn.prepare_cached("SELECT user, text, since FROM away ORDER BY user")?;
    let rows = stmt.query_map([], |r| {
        Ok(AwayState {
            user: r.get(0)?,
            text: r.get(1)?,
            since: r.get(2)?,
        })
    })?;
    rows.collect()
}
