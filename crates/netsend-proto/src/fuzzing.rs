//! Entry points shared by the fuzz targets and the tests.

use netsend_wire::nbss::check_frame;
use netsend_wire::oem::CodePage;

use crate::session::{Action, ServerSession, SessionConfig};

/// Drives a server session with arbitrary bytes split into frames, as the TCP
/// driver does: it must never panic, and must never deliver more text than the
/// limit allows.
#[doc(hidden)]
pub fn session(data: &[u8]) {
    let config = SessionConfig::new(CodePage::Cp850);
    let mut session = ServerSession::new(config);
    let mut rest = data;
    let is_ours = |n: &netsend_wire::NetbiosName| n.trimmed().first() == Some(&b'A');
    while let Ok(Some(len)) = check_frame(rest, session.max_frame_len()) {
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        match session.handle_frame(frame, &is_ours) {
            Action::Close | Action::SendAndClose(_) => return,
            Action::Deliver { message, .. } => {
                assert!(message.text.len() <= 4 * config.max_message_len)
            }
            Action::Send(_) | Action::Nothing => {}
        }
    }
}

/// Drives the datagram receive path with arbitrary bytes, as the UDP driver
/// does: it must never panic, and a message it accepts is addressed to us.
#[doc(hidden)]
pub fn datagram(data: &[u8]) {
    let workgroup = netsend_wire::NetbiosName::new("WORKGROUP", 0).expect("valid name");
    let is_ours = |n: &netsend_wire::NetbiosName| n.trimmed().first() == Some(&b'A');
    if let Some(received) = crate::mailslot::receive(data, &workgroup, &is_ours, CodePage::Cp850) {
        assert!(received.message.text.len() <= 4 * data.len() + 16);
    }
}
