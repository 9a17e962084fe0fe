//! The inbox's schema and its migrations, and how every connection to the
//! database is opened.
//!
//! `PRAGMA user_version` says which migrations have run; [`migrate`] runs the
//! missing ones in one transaction, so a database is never left half
//! upgraded.

use std::path::Path;

use rusqlite::Connection;

use super::InboxError;

/// Prepared statements each connection keeps (every statement of the hot
/// path, the readers' queries, and room to spare), so no insert or read
/// parses its SQL again.
const STATEMENT_CACHE: usize = 64;

/// Version 1: the messages.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    from_name TEXT NOT NULL,
    to_alias TEXT NOT NULL,
    recipient_user TEXT,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    transport TEXT NOT NULL,
    broadcast INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_user ON messages (recipient_user, id);
";

/// Version 2: receipts (when shown, when read) and per-user hiding of shared
/// messages. Runs once on a version 1 database.
const MIGRATION_2: &str = "
ALTER TABLE messages ADD COLUMN shown_at INTEGER;
ALTER TABLE messages ADD COLUMN read_at INTEGER;
CREATE TABLE IF NOT EXISTS hidden (
    message_id INTEGER NOT NULL,
    user TEXT NOT NULL,
    PRIMARY KEY (message_id, user)
);
PRAGMA user_version = 2;
";

/// Version 3: the outgoing queue (store-and-forward for names that cannot be
/// reached now).
const MIGRATION_3: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    owner TEXT NOT NULL,
    to_name TEXT NOT NULL,
    from_name TEXT NOT NULL,
    text TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_try INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    done_at INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_try);
PRAGMA user_version = 3;
";

/// Version 4: what this host sent to other hosts, with the receipts they
/// returned.
const MIGRATION_4: &str = "
CREATE TABLE IF NOT EXISTS sent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sent_at INTEGER NOT NULL,
    owner TEXT NOT NULL,
    to_name TEXT NOT NULL,
    from_name TEXT NOT NULL,
    address TEXT NOT NULL,
    digest TEXT NOT NULL,
    shown_at INTEGER,
    read_at INTEGER
);
CREATE INDEX IF NOT EXISTS sent_by_address ON sent (address, id);
PRAGMA user_version = 4;
";

/// Version 5: each user's own receipts for shared messages (to the computer
/// name, broadcasts), so that one user reading such a message does not mark
/// it read for the others.
const MIGRATION_5: &str = "
CREATE TABLE IF NOT EXISTS shared_reads (
    message_id INTEGER NOT NULL,
    user TEXT NOT NULL,
    shown_at INTEGER,
    read_at INTEGER,
    PRIMARY KEY (message_id, user)
);
PRAGMA user_version = 5;
";

/// Version 6: a full-text index (FTS5, trigrams, case folded) of each
/// message's sender, alias and text, kept by triggers, for `--search`
/// (without column sizes: nothing is ranked, and each store writes less).
const MIGRATION_6: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    from_name, to_alias, text,
    content = 'messages', content_rowid = 'id', tokenize = 'trigram case_sensitive 0',
    columnsize = 0
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, from_name, to_alias, text)
    VALUES (new.id, new.from_name, new.to_alias, new.text);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, from_name, to_alias, text)
    VALUES ('delete', old.id, old.from_name, old.to_alias, old.text);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
PRAGMA user_version = 6;
";

/// Version 7: the queue and the sent records by owner, for their per-user
/// bounds.
const MIGRATION_7: &str = "
CREATE INDEX IF NOT EXISTS outbox_by_owner ON outbox (owner, id);
CREATE INDEX IF NOT EXISTS sent_by_owner ON sent (owner, id);
PRAGMA user_version = 7;
";

/// Version 8: the full-text index is brought up to date by the writer when
/// it has nothing else to do ([`index_pending`]), not inside each message's
/// insert, so a commit that acknowledges messages does not wait for it.
/// `fts_progress.indexed_upto` is the newest message id indexed; searches
/// scan the messages after it. Only indexed rows are removed from the index.
const MIGRATION_8: &str = "
DROP TRIGGER IF EXISTS messages_fts_insert;
CREATE TABLE IF NOT EXISTS fts_progress (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    indexed_upto INTEGER NOT NULL
);
INSERT OR IGNORE INTO fts_progress (id, indexed_upto)
    VALUES (0, (SELECT COALESCE(MAX(id), 0) FROM messages));
DROP TRIGGER IF EXISTS messages_fts_delete;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.id <= (SELECT indexed_upto FROM fts_progress) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, from_name, to_alias, text)
    VALUES ('delete', old.id, old.from_name, old.to_alias, old.text);
END;
PRAGMA user_version = 8;
";

/// Version 9: the sent archive (the text, the kind of send, its outcome and
/// queue entry) beside the receipts, the messages by sender for `--from`
/// and `--with`, and each user's away message.
const MIGRATION_9: &str = "
ALTER TABLE sent ADD COLUMN text TEXT NOT NULL DEFAULT '';
ALTER TABLE sent ADD COLUMN kind TEXT NOT NULL DEFAULT 'directed';
ALTER TABLE sent ADD COLUMN outcome TEXT NOT NULL DEFAULT 'delivered';
ALTER TABLE sent ADD COLUMN queue_id INTEGER;
CREATE INDEX IF NOT EXISTS sent_by_recipient ON sent (upper(to_name), id);
CREATE INDEX IF NOT EXISTS messages_by_sender ON messages (upper(from_name), id);
CREATE TABLE IF NOT EXISTS away (
    user TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    since INTEGER NOT NULL
);
PRAGMA user_version = 9;
";

/// Version 10: verified senders: the host whose pinned key delivered each
/// message over the remote channel (NULL: unverified), and, for an
/// unverified one, the host that uses its sender name verified.
const MIGRATION_10: &str = "
ALTER TABLE messages ADD COLUMN verified_host TEXT;
ALTER TABLE messages ADD COLUMN claimed_by TEXT;
PRAGMA user_version = 10;
";

/// Version 11: the WINS server's table (`[wins_server]`), one row per holder
/// of a name (the raw 16-byte name, the address as an integer, expiry in
/// Unix seconds).
const MIGRATION_11: &str = "
CREATE TABLE IF NOT EXISTS wins_names (
    name BLOB NOT NULL,
    address INTEGER NOT NULL,
    grp INTEGER NOT NULL,
    nb_flags INTEGER NOT NULL,
    released INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (name, address)
);
PRAGMA user_version = 11;
";

/// Version 12: the delivery tags of tagged senders (a site gateway, the
/// outgoing queue), keyed by source address and tag, so a repeat after a
/// sender's crash is acknowledged without being stored twice.
const MIGRATION_12: &str = "
CREATE TABLE IF NOT EXISTS delivery_tags (
    key TEXT PRIMARY KEY,
    message_id INTEGER NOT NULL,
    received_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS delivery_tags_age ON delivery_tags (received_at);
PRAGMA user_version = 12;
";

/// Messages indexed in one of the writer's idle transactions.
const INDEX_CHUNK: i64 = 256;

/// Adds to the full-text index up to [`INDEX_CHUNK`] of the oldest messages
/// it lacks, in one transaction; returns how many.
pub(super) fn index_pending(conn: &mut Connection) -> rusqlite::Result<usize> {
    let upto: i64 = conn
        .prepare_cached("SELECT indexed_upto FROM fts_progress")?
        .query_row([], |r| r.get(0))?;
    let pending: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE id > ?1)")?
        .query_row([upto], |r| r.get(0))?;
    if !pending {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    let indexed = tx
        .prepare_cached(
            "INSERT INTO messages_fts (rowid, from_name, to_alias, text)
         SELECT id, from_name, to_alias, text FROM messages
         WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?
        .execute(rusqlite::params![upto, INDEX_CHUNK])?;
    if indexed > 0 {
        tx.prepare_cached(
            "UPDATE fts_progress SET indexed_upto = (SELECT MAX(id) FROM
                 (SELECT id FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2))",
        )?
        .execute(rusqlite::params![upto, INDEX_CHUNK])?;
    }
    tx.commit()?;
    Ok(indexed)
}

/// Every version's script, in order: version `n` is `MIGRATIONS[n - 1]`.
const MIGRATIONS: [&str; 12] = [
    SCHEMA,
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4,
    MIGRATION_5,
    MIGRATION_6,
    MIGRATION_7,
    MIGRATION_8,
    MIGRATION_9,
    MIGRATION_10,
    MIGRATION_11,
    MIGRATION_12,
];

/// Creates or upgrades the schema to the current version.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), InboxError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let done = usize::try_from(version).unwrap_or(0);
    let tx = conn.transaction()?;
    for script in MIGRATIONS.iter().skip(done) {
        tx.execute_batch(script)?;
    }
    tx.commit()?;
    Ok(())
}

/// Opens a connection: WAL, `synchronous=FULL` (a commit is on disk when it
/// returns), a busy timeout, the `casefold` function and a statement cache.
pub(super) fn connect(path: &Path) -> Result<Connection, InboxError> {
    let conn = Connection::open(path)?;
    // `casefold(x)`: lower case for every script, for search (SQLite's own
    // LIKE folds ASCII only).
    conn.create_scalar_function(
        "casefold",
        1,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8
            | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(ctx.get::<Option<String>>(0)?.map(|s| s.to_lowercase())),
    )?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Runs one statement through the connection's statement cache, so that
/// running it again does not parse its SQL again.
pub(super) fn execute_cached(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}
