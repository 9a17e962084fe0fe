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

/// Sanitises arbitrary text and builds the terminal and notification texts
/// from it: none may panic, and none may hold a control character other than
/// the line ends (and the terminal banner's one BEL).
#[doc(hidden)]
pub fn display(data: &[u8]) {
    use crate::display::{sanitize, Shown, TimeOfDay};
    let text = String::from_utf8_lossy(data);
    let clean = sanitize(&text);
    assert!(clean.chars().all(|c| c == '\n' || !c.is_control()));
    assert_eq!(sanitize(&clean), clean);
    let shown = Shown {
        from: &text,
        to: &text,
        text: &text,
        broadcast: data.first().is_some_and(|b| b & 1 == 1),
        time: TimeOfDay {
            hour: 23,
            minute: 59,
        },
    };
    let terminal = shown.terminal_text(&text).replace("\r\n", "");
    assert_eq!(terminal.chars().filter(|c| c.is_control()).count(), 1);
    let body = shown.notification_body(true);
    assert!(body.chars().all(|c| c == '\n' || !c.is_control()));
    assert!(!body.contains('<'));
    assert!(!shown.summary().contains('\n'));
}

/// Reads arbitrary bytes as a receipt payload and as a receipt datagram, as
/// the datagram driver does: neither may panic, and an accepted payload is
/// written back byte for byte.
#[doc(hidden)]
pub fn receipt(data: &[u8]) {
    use crate::receipt::{from_datagram, Receipt};
    if let Ok(receipt) = Receipt::parse(data) {
        assert_eq!(
            receipt.to_bytes().expect("a parsed receipt re-encodes"),
            data
        );
    }
    if let Some(receipt) = from_datagram(data) {
        let again = Receipt::parse(&receipt.to_bytes().expect("re-encodes")).expect("re-parses");
        assert_eq!(again, receipt);
    }
}

/// Reads arbitrary bytes as an inbox search text, as the control socket
/// does: it must never panic, and an indexed query must be one FTS5 phrase
/// of exactly the text.
#[doc(hidden)]
pub fn search(data: &[u8]) {
    use crate::search::{unquote, Search, MAX_SEARCH_LEN};
    let text = String::from_utf8_lossy(data);
    match Search::parse(&text) {
        Ok(Search::Indexed(query)) => {
            assert!(query.len() <= 2 * MAX_SEARCH_LEN + 2);
            assert_eq!(unquote(&query).as_deref(), Some(&*text));
        }
        Ok(Search::Scan(s)) => assert!(s.chars().count() < 3),
        Ok(Search::All) => assert!(text.is_empty()),
        Err(_) => assert!(text.len() > MAX_SEARCH_LEN || text.contains('\0')),
    }
}
