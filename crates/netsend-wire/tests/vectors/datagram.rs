//! Every datagram-service packet in the captures (nmbd's browser mailslot
//! traffic) decodes and re-emits byte for byte.

use netsend_wire::nbds::{Datagram, MessageType};
use netsend_wire::smb::mailslot::MailslotWrite;

use crate::capture;

#[test]
fn every_datagram_and_mailslot_write_round_trips() {
    let mut seen = 0;
    for file in capture::all_captures() {
        for p in capture::udp(&file, 138) {
            let d = Datagram::parse(&p.data).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(d.to_bytes().unwrap(), p.data, "{file}");
            let Datagram::Data {
                header, user_data, ..
            } = d
            else {
                continue;
            };
            assert!(matches!(
                header.msg_type,
                MessageType::DIRECT_GROUP | MessageType::DIRECT_UNIQUE | MessageType::BROADCAST
            ));
            let write = MailslotWrite::parse(&user_data).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(write.to_bytes().unwrap(), user_data, "{file}");
            assert!(
                write.name.eq_ignore_ascii_case(b"\\MAILSLOT\\BROWSE"),
                "{file}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 3, "only {seen} datagrams");
}
