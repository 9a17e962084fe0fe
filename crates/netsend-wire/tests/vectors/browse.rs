//! nmbd's own `\MAILSLOT\BROWSE` datagrams as local master browser
//! (`tests/captures/nmbd-lmb/`): each decodes through the datagram, the
//! mailslot write and the browse frame, and re-emits byte for byte.

use std::path::PathBuf;

use netsend_wire::browse::{
    is_browse_mailslot, opcode, server_type, AnnouncementKind, BrowseFrame,
};
use netsend_wire::nbds::Datagram;
use netsend_wire::smb::mailslot::MailslotWrite;

/// The frame of capture `file`, after checking the round trips on the way.
fn frame(file: &str) -> (String, BrowseFrame) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/captures/nmbd-lmb")
        .join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let dgram = Datagram::parse(&bytes).unwrap();
    assert_eq!(dgram.to_bytes().unwrap(), bytes, "{file}");
    let Datagram::Data {
        destination_name,
        user_data,
        ..
    } = dgram
    else {
        panic!("{file}: not a data datagram")
    };
    let write = MailslotWrite::parse(&user_data).unwrap();
    assert_eq!(write.to_bytes().unwrap(), user_data, "{file}");
    assert!(is_browse_mailslot(&write.name), "{file}");
    let frame = BrowseFrame::parse(&write.data).unwrap();
    assert_eq!(frame.to_bytes().unwrap(), write.data, "{file}");
    // Built the way netsend builds a browse write, the same bytes come out.
    let rebuilt = MailslotWrite {
        header: write.header,
        max_data_count: write.max_data_count,
        timeout: write.timeout,
        flags: write.flags,
        priority: write.priority,
        class: write.class,
        total_data_count: write.total_data_count,
        ..MailslotWrite::to_mailslot(netsend_wire::browse::BROWSE, write.data.clone())
    };
    assert_eq!(rebuilt.to_bytes().unwrap(), user_data, "{file}");
    (destination_name.name.to_string(), frame)
}

fn announcement(file: &str) -> (String, netsend_wire::browse::Announcement) {
    match frame(file) {
        (to, BrowseFrame::Announcement(a)) => (to, a),
        other => panic!("{file}: {other:?}"),
    }
}

#[test]
fn nmbd_host_announcement() {
    let (to, a) = announcement("01-host-announcement.bin");
    assert_eq!(to, "CAPGROUP<1d>");
    assert_eq!(a.kind, AnnouncementKind::Host);
    assert_eq!(a.name(), b"LMBHOST");
    assert_eq!(a.periodicity_ms, 60_000);
    assert_eq!(a.comment, b"Samba LMB capture");
    assert_eq!((a.os_major, a.os_minor), (6, 1));
    assert_eq!((a.browser_major, a.browser_minor), (15, 1));
    assert_eq!(a.signature, 0xAA55);
    let bits = server_type::WORKSTATION | server_type::SERVER | server_type::SERVER_UNIX;
    assert_eq!(a.server_type & bits, bits);
    assert_eq!(a.server_type & server_type::MASTER_BROWSER, 0);
}

#[test]
fn nmbd_as_master_announces_itself_and_its_workgroup() {
    let (to, lm) = announcement("04-local-master-announcement.bin");
    assert_eq!(to, "CAPGROUP<1e>");
    assert_eq!(lm.kind, AnnouncementKind::LocalMaster);
    assert_ne!(lm.server_type & server_type::MASTER_BROWSER, 0);
    assert_eq!(lm.name(), b"LMBHOST");
    let (to, dom) = announcement("05-domain-announcement.bin");
    assert_eq!(to, "\\x01\\x02__MSBROWSE__\\x02<01>");
    assert_eq!(dom.kind, AnnouncementKind::Domain);
    assert_eq!(dom.name(), b"CAPGROUP");
    assert_eq!(dom.comment, b"LMBHOST");
    assert_ne!(dom.server_type & server_type::DOMAIN_ENUM, 0);
}

#[test]
fn nmbd_stop_announces_type_zero() {
    for file in ["06-local-master-stop.bin", "07-host-stop.bin"] {
        let (_, a) = announcement(file);
        assert_eq!((a.server_type, a.periodicity_ms), (0, 0), "{file}");
        assert_eq!(a.name(), b"LMBHOST");
    }
}

#[test]
fn nmbd_requests_and_elections() {
    // nmbd asks the browser election name, not `CAPGROUP<00>`.
    let (to, f) = frame("03-announcement-request.bin");
    assert_eq!(to, "CAPGROUP<1e>");
    let BrowseFrame::AnnouncementRequest(req) = f else {
        panic!("{f:?}")
    };
    assert_eq!(req.response_name(), b"LMBHOST");
    let (_, f) = frame("02-election.bin");
    assert!(matches!(f, BrowseFrame::Ignored { opcode: op, .. } if op == opcode::ELECTION));
}
