//! The record of messages this host sent, with the receipts their
//! recipients returned: its changes, made by the writer, and look-ups.

use rusqlite::{params, Connection, OptionalExtension};

use super::schema::execute_cached;
use super::{now_ms, SentRecord};

/// A change to the record of sent messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentOp {
    /// A message was delivered to `address`.
    Record {
        /// The Unix user who sent it.
        owner: String,
        /// The recipient name.
        to: String,
        /// The sender name.
        from: String,
        /// The recipient host's IP address.
        address: String,
        /// [`netsend_proto::receipt::digest`] of the text.
        digest: String,
        /// Records kept for `owner`: older ones beyond this are deleted.
        keep: u64,
    },
    /// A receipt came from `address`: it applies to the newest matching
    /// message sent there that has no such receipt yet.
    Receipt {
        /// Where it came from.
        address: String,
        /// The receipt.
        receipt: netsend_proto::receipt::Receipt,
    },
}

/// Carries out `op`; returns the new record's id (`Record`) or how many
/// records a receipt updated.
pub(super) fn change(conn: &Connection, op: &SentOp) -> rusqlite::Result<i64> {
    match op {
        SentOp::Record {
            owner,
            to,
            from,
            address,
            digest,
            keep,
        } => {
            execute_cached(
                conn,
                "INSERT INTO sent (sent_at, owner, to_name, from_name, address, digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![now_ms(), owner, to, from, address, digest],
            )?;
            let id = conn.last_insert_rowid();
            // The owner's records beyond `keep`, oldest first, go.
            execute_cached(
                conn,
                "DELETE FROM sent WHERE owner = ?1 AND id <= (
                    SELECT id FROM sent WHERE owner = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![owner, i64::try_from(*keep).unwrap_or(i64::MAX)],
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

/// Sent record `id`, if `owner` (root: `None`) sent it.
pub(super) fn get(
    conn: &Connection,
    id: i64,
    owner: Option<&str>,
) -> rusqlite::Result<Option<SentRecord>> {
    conn.prepare_cached(
        "SELECT id, sent_at, to_name, from_name, address, shown_at, read_at FROM sent
         WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)",
    )?
    .query_row(params![id, owner], |r| {
        Ok(SentRecord {
            id: r.get(0)?,
            sent_at: r.get(1)?,
            to: r.get(2)?,
            from: r.get(3)?,
            address: r.get(4)?,
            shown_at: r.get(5)?,
            read_at: r.get(6)?,
        })
    })
    .optional()
}
