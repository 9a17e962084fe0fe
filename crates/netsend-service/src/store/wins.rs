//! The WINS server's table (`[wins_server]`), kept across restarts: one row
//! per holder of a name, changed by the writer, read back at start (the
//! server forgets the lapsed ones with a change of their own).

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netsend_proto::wins_server::{Change, Member, Record};
use netsend_wire::NetbiosName;
use rusqlite::{params, Connection};

use super::schema::execute_cached;

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Makes `change`; returns the rows written.
pub(super) fn change(conn: &Connection, change: &Change) -> rusqlite::Result<i64> {
    let name = match change {
        Change::Put(record) => &record.name,
        Change::Remove(name) => name,
    };
    let mut n = execute_cached(
        conn,
        "DELETE FROM wins_names WHERE name = ?1",
        params![&name.as_raw()[..]],
    )?;
    if let Change::Put(r) = change {
        for m in &r.members {
            n += execute_cached(
                conn,
                "INSERT INTO wins_names (name, address, grp, nb_flags, released, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    &r.name.as_raw()[..],
                    u32::from(m.address),
                    r.group,
                    r.nb_flags,
                    r.released,
                    secs(m.expires)
                ],
            )?;
        }
    }
    Ok(n as i64)
}

/// Every record (the server drops the lapsed ones when it loads them).
pub(super) fn load(conn: &Connection) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, address, grp, nb_flags, released, expires FROM wins_names ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        let raw: Vec<u8> = r.get(0)?;
        let expires: i64 = r.get(5)?;
        Ok((
            raw,
            Member {
                address: Ipv4Addr::from(r.get::<_, u32>(1)?),
                expires: UNIX_EPOCH + Duration::from_secs(u64::try_from(expires).unwrap_or(0)),
            },
            r.get::<_, bool>(2)?,
            r.get::<_, u16>(3)?,
            r.get::<_, bool>(4)?,
        ))
    })?;
    let mut records: Vec<Record> = Vec::new();
    for row in rows {
        let (raw, member, group, nb_flags, released) = row?;
        // A row that is not a 16-byte name was not written by us: skipped.
        let Ok(raw) = <[u8; 16]>::try_from(raw.as_slice()) else {
            continue;
        };
        let name = NetbiosName::from_raw(raw);
        match records.last_mut().filter(|r| r.name == name) {
            Some(record) => record.members.push(member),
            None => records.push(Record {
                name,
                group,
                nb_flags,
                members: vec![member],
                released,
            }),
        }
    }
    Ok(records)
}
