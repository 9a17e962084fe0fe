//! One service on loopback: the quickstart, aliases, inbox, and error paths.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::{stderr, stdout, Service};

#[test]
fn quickstart_send_to_own_computer_name() {
    let svc = Service::start("HOST1", "", "");
    let out = svc.cli(&["send", "host1", "Hello", "from", "the", "quickstart"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("successfully sent to HOST1"));
    let inbox = svc.wait_inbox(1);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["text"], "Hello from the quickstart");
    assert_eq!(inbox[0]["to"], "HOST1");
    assert_eq!(inbox[0]["read"], false);
    // The plain listing shows it, `inbox read` marks it read.
    let list = stdout(&svc.cli(&["inbox"]));
    assert!(list.contains("Hello from the quickstart"), "{list}");
    let id = inbox[0]["id"].as_i64().unwrap().to_string();
    let read = svc.cli(&["inbox", "read", &id]);
    assert!(stdout(&read).contains("Hello from the quickstart"));
    assert_eq!(svc.inbox()[0]["read"], true);
    let unread: Vec<serde_json::Value> =
        serde_json::from_slice(&svc.cli(&["inbox", "--json", "--unread"]).stdout).unwrap();
    assert!(unread.is_empty());
    // A wrong id, or no text: 87 with a hint about what is wrong, not about names.
    for (args, hint) in [
        (&["inbox", "read", "999"][..], "`netsend inbox` lists"),
        (&["queue", "cancel", "999"][..], "`netsend queue` lists"),
        (&["status", "999"][..], "`netsend send` printed"),
        (&["send", "host1"][..], "`-` to read it from standard input"),
    ] {
        let out = svc.cli(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("(87)") && err.contains(hint),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn long_and_non_ascii_messages_arrive_intact() {
    let svc = Service::start("HOST2", "", "");
    let long: String = (0..1000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let out = svc.cli(&["send", "HOST2", &long]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = "Grüße aus Köln: é ü ä ö ß £ and € too";
    let out = svc.cli(&["send", "HOST2", text]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = "line one\nline two\n";
    let out = svc.cli_stdin(&["send", "HOST2", "-"], Some(lines.as_bytes()));
    assert!(out.status.success(), "{}", stderr(&out));
    let inbox = svc.wait_inbox(3);
    assert_eq!(inbox[0]["text"], long.as_str());
    assert_eq!(inbox[1]["text"], text);
    assert_eq!(inbox[2]["text"], lines);
}

#[test]
fn aliases_add_list_delete_and_receive() {
    let svc = Service::start("HOST3", "", "");
    let out = svc.cli(&["name", "helpdesk", "/ADD"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = svc.cli(&["name", "HELPDESK", "/add"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("NERR_AlreadyExists (2276)"),
        "{}",
        stderr(&out)
    );
    let list = stdout(&svc.cli(&["name"]));
    assert!(
        list.contains("HOST3") && list.contains("HELPDESK"),
        "{list}"
    );
    let out = svc.cli(&["send", "helpdesk", "printer", "on", "fire"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(svc.wait_inbox(1)[0]["to"], "HELPDESK");
    let out = svc.cli(&["name", "host3", "/delete"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("NERR_DelComputerName (2278)"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let out = svc.cli(&["name", "helpdesk", "/delete"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&svc.cli(&["name"])).contains("HELPDESK"));
    let out = svc.cli(&["name", "bad*name", "/add"]);
    assert!(stderr(&out).contains("(87)"), "{}", stderr(&out));
}

#[test]
fn unknown_name_and_host_without_messenger() {
    // A port that nothing listens on: bind, note it, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let extra = format!("[[static_names]]\nname = \"DEADHOST\"\naddress = \"{closed}\"\n");
    let svc = Service::start("HOST4", "", &extra);
    let out = svc.cli(&["send", "nosuchname", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "NERR_NameNotFound (2273): The message alias could not be found on the network."
        ),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    let out = svc.cli(&["send", "deadhost", "hello"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("NERR_NetworkError (2136)"),
        "{}",
        stderr(&out)
    );
    // A broadcast on a loopback-only service has nowhere to go; the hint
    // says what to configure, not to check a TCP 139 peer.
    let out = svc.cli(&["send", "*", "hello"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("(2136)") && err.contains("hint: broadcasts are UDP 138 datagrams"),
        "{err}"
    );
    assert!(svc.inbox().is_empty());
}

#[test]
fn service_down_gives_msg_not_started() {
    let svc = Service::start("HOST5", "", "");
    // Keep the configuration: stopping drops the service's directory.
    let keep = tempfile::tempdir().unwrap();
    let config = keep.path().join("netsend.toml");
    std::fs::copy(&svc.config, &config).unwrap();
    let status = svc.stop();
    assert!(status.success());
    for args in [vec!["inbox"], vec!["name"], vec!["send", "host5", "hi"]] {
        let out = std::process::Command::new(crate::harness::netsend_bin())
            .arg("--config")
            .arg(&config)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("NERR_MsgNotStarted (2284)"), "{args:?}: {err}");
        assert!(err.contains("netsend messenger start"), "{err}");
    }
}

pub(crate) fn nbss(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, (payload.len() >> 8) as u8, payload.len() as u8];
    v.extend_from_slice(payload);
    v
}

pub(crate) fn smb(command: u8, words: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![0xFF, b'S', b'M', b'B', command];
    v.extend_from_slice(&[0; 27]);
    v.push((words.len() / 2) as u8);
    v.extend_from_slice(words);
    v.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    v.extend_from_slice(bytes);
    v
}

/// An NBSS session request to `called<03>` from `calling<00>`.
pub(crate) fn session_request(called: &str, calling: &str) -> Vec<u8> {
    let mut req = vec![0x81, 0, 0, 68];
    for (name, sfx) in [(called, 3u8), (calling, 0u8)] {
        let mut raw = [b' '; 16];
        raw[..name.len()].copy_from_slice(name.as_bytes());
        raw[15] = sfx;
        req.push(32);
        for b in raw {
            req.push(b'A' + (b >> 4));
            req.push(b'A' + (b & 15));
        }
        req.push(0);
    }
    req
}

pub(crate) fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).ok()?;
    let len =
        (usize::from(head[1] & 1) << 16) | usize::from(u16::from_be_bytes([head[2], head[3]]));
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

#[test]
fn malformed_input_gets_protocol_errors_and_loses_nothing() {
    let svc = Service::start("HOST6", "", "");
    let connect = || {
        let s = TcpStream::connect(svc.session).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    // D7 without D5: ERRDOS/87 (ERRinvalidparam), like smbd.
    let mut s = connect();
    s.write_all(&nbss(&smb(0xD7, &[0, 0], &[1, 2, 0, b'h', b'i'])))
        .unwrap();
    let reply = read_frame(&mut s).unwrap();
    assert_eq!(&reply[..5], b"\xFFSMB\xD7");
    assert_eq!(
        (reply[5], u16::from_le_bytes([reply[7], reply[8]])),
        (0x01, 87)
    );
    // A D5 to a name we do not hold: ERRSRV/ERRmsgoff.
    s.write_all(&nbss(&smb(0xD5, &[], b"\x04bob\x00\x04NOTHERE\x00")))
        .unwrap();
    let reply = read_frame(&mut s).unwrap();
    assert_eq!(
        (reply[5], u16::from_le_bytes([reply[7], reply[8]])),
        (0x02, 0x52)
    );
    // Start a message, send an oversized block: ERRSRV/ERRerror, nothing stored.
    s.write_all(&nbss(&smb(0xD5, &[], b"\x04bob\x00\x04HOST6\x00")))
        .unwrap();
    assert_eq!(read_frame(&mut s).unwrap()[5], 0);
    let mut block = vec![1u8];
    block.extend_from_slice(&300u16.to_le_bytes());
    block.extend_from_slice(&[b'x'; 300]);
    s.write_all(&nbss(&smb(0xD7, &[0, 0], &block))).unwrap();
    let reply = read_frame(&mut s).unwrap();
    assert_eq!(reply[5], 0x02, "oversized block must be refused");
    s.write_all(&nbss(&smb(0xD6, &[0, 0], &[]))).unwrap();
    let _ = read_frame(&mut s);
    drop(s);
    // An announced frame far beyond the limit: the connection is closed at once.
    let mut s = connect();
    s.write_all(&[0x00, 0x01, 0xFF, 0xFF]).unwrap();
    assert!(read_frame(&mut s).is_none());
    // Garbage that is not SMB.
    let mut s = connect();
    s.write_all(&nbss(b"GET / HTTP/1.0\r\n\r\n")).unwrap();
    let _ = read_frame(&mut s);
    // Truncated SMB: connection dropped or error, never a crash.
    let mut s = connect();
    s.write_all(&nbss(b"\xFFSMB\xD0\x00")).unwrap();
    let _ = read_frame(&mut s);
    // The service still serves, and the inbox holds only the good message.
    let out = svc.cli(&["send", "HOST6", "still", "alive"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let inbox = svc.wait_inbox(1);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["text"], "still alive");
}

#[test]
fn raw_single_block_message_is_acknowledged_after_commit() {
    let svc = Service::start("HOST7", "", "");
    let mut s = TcpStream::connect(svc.session).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Session request to HOST7<03> from BOB<00>, then D0.
    let req = session_request("HOST7", "BOB");
    s.write_all(&req).unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head, [0x82, 0, 0, 0]);
    let mut body = b"\x04BOB\x00\x04HOST7\x00\x01".to_vec();
    body.extend_from_slice(&2u16.to_le_bytes());
    body.extend_from_slice(b"hi");
    s.write_all(&nbss(&smb(0xD0, &[], &body))).unwrap();
    let reply = read_frame(&mut s).unwrap();
    assert_eq!(reply.len(), 35);
    assert_eq!(reply[4], 0xD0);
    assert_eq!(&reply[5..9], &[0, 0, 0, 0]);
    assert_eq!(reply[9] & 0x80, 0x80);
    // The success reply came after the commit: the message is there now.
    let inbox = svc.inbox();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["from"], "BOB");
    assert_eq!(inbox[0]["text"], "hi");
    // A session request for a name we do not hold: negative response 0x82.
    let mut s = TcpStream::connect(svc.session).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&session_request("NOTHERE", "BOB")).unwrap();
    let mut reply = [0u8; 5];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply, [0x83, 0, 0, 1, 0x82]);
}

#[test]
fn inbox_lists_more_messages_than_one_page() {
    let svc = Service::start(
        "HOST8",
        "",
        "[limits]\nmessages_per_minute = 0\nsender_messages_per_minute = 0\n",
    );
    let mut s = TcpStream::connect(svc.session).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..250 {
        let text = format!("message {i}");
        let mut body = b"\x04BOB\x00\x04HOST8\x00\x01".to_vec();
        body.extend_from_slice(&(text.len() as u16).to_le_bytes());
        body.extend_from_slice(text.as_bytes());
        s.write_all(&nbss(&smb(0xD0, &[], &body))).unwrap();
        assert_eq!(read_frame(&mut s).unwrap()[5], 0);
    }
    let inbox = svc.inbox();
    assert_eq!(inbox.len(), 250);
    assert_eq!(inbox[249]["text"], "message 249");
}

#[test]
fn a_flooding_source_is_limited_and_others_still_get_through() {
    let svc = Service::start(
        "HOST9",
        "",
        "[limits]\nmessages_per_minute = 60\nmessage_burst = 5\n",
    );
    let send = |s: &mut TcpStream, text: &str| -> u8 {
        let mut body = b"\x04FLOOD\x00\x04HOST9\x00\x01".to_vec();
        body.extend_from_slice(&(text.len() as u16).to_le_bytes());
        body.extend_from_slice(text.as_bytes());
        s.write_all(&nbss(&smb(0xD0, &[], &body))).unwrap();
        read_frame(s).unwrap()[5]
    };
    let mut flood = TcpStream::connect(svc.session).unwrap();
    flood
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let classes: Vec<u8> = (0..20)
        .map(|i| send(&mut flood, &format!("spam {i}")))
        .collect();
    assert_eq!(
        classes.iter().filter(|&&c| c == 0).count(),
        5,
        "{classes:?}"
    );
    // Refused with ERRSRV (ERRnoroom): the sender learns it was not delivered.
    assert!(classes[5..].iter().all(|&c| c == 2), "{classes:?}");
    // Another source address is not held up.
    let other = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    other
        .bind(
            &"127.0.0.2:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    other.connect(&svc.session.into()).unwrap();
    let mut other: TcpStream = other.into();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(send(&mut other, "legit"), 0);
    assert_eq!(svc.inbox().len(), 6);
    let status = stdout(&svc.cli(&["messenger", "status"]));
    assert!(
        status.contains("dropped:       15 (source_rate 15)"),
        "{status}"
    );
}

/// Sends one single-block message (0xD0) claiming `from` on `s`; returns the
/// reply's error class (0: stored).
pub(crate) fn send_as(s: &mut TcpStream, from: &str, to: &str, text: &str) -> u8 {
    let mut body = format!("\x04{from}\x00\x04{to}\x00\x01").into_bytes();
    body.extend_from_slice(&(text.len() as u16).to_le_bytes());
    body.extend_from_slice(text.as_bytes());
    s.write_all(&nbss(&smb(0xD0, &[], &body))).unwrap();
    read_frame(s).unwrap()[5]
}

/// Asserts that the service closes `s` without answering a message to `to`.
fn assert_closed_unanswered(s: &mut TcpStream, to: &str) {
    let body = format!("\x04X\x00\x04{to}\x00\x01\x01\x00x").into_bytes();
    let _ = s.write_all(&nbss(&smb(0xD0, &[], &body)));
    let mut byte = [0u8; 1];
    assert!(matches!(s.read(&mut byte), Ok(0) | Err(_)));
}

/// A TCP connection to `to` from the loopback address `from`.
pub(crate) fn connect_from(from: &str, to: std::net::SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(
        &format!("{from}:0")
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

#[test]
fn one_claimed_sender_is_limited_across_addresses() {
    let svc = Service::start(
        "HOST10",
        "",
        "[limits]\nsender_messages_per_minute = 60\nsender_message_burst = 3\n",
    );
    let mut a = connect_from("127.0.0.1", svc.session);
    let mut b = connect_from("127.0.0.2", svc.session);
    let mut classes = Vec::new();
    for i in 0..4 {
        classes.push(send_as(&mut a, "SPAMMER", "HOST10", &format!("a{i}")));
        classes.push(send_as(&mut b, "spammer", "HOST10", &format!("b{i}")));
    }
    assert_eq!(
        classes.iter().filter(|&&c| c == 0).count(),
        3,
        "{classes:?}"
    );
    assert!(classes.iter().all(|&c| c == 0 || c == 2), "{classes:?}");
    // Another name from the same addresses is not held up.
    assert_eq!(send_as(&mut a, "ALICE", "HOST10", "legit"), 0);
    assert_eq!(svc.inbox().len(), 4);
    let status = stdout(&svc.cli(&["messenger", "status"]));
    assert!(
        status.contains("dropped:       5 (sender_rate 5)"),
        "{status}"
    );
}

#[test]
fn allow_and_deny_lists_drop_addresses_and_sender_names() {
    let svc = Service::start(
        "HOST11",
        "",
        "[filter]\ndeny_networks = [\"127.0.0.2\"]\ndeny_senders = [\"SPAM*\", \"B?D\"]\n",
    );
    // A denied address is closed before anything is read.
    let mut denied = connect_from("127.0.0.2", svc.session);
    assert_closed_unanswered(&mut denied, "HOST11");
    let mut ok = connect_from("127.0.0.3", svc.session);
    assert_eq!(send_as(&mut ok, "SPAMBOT", "HOST11", "buy now"), 2);
    assert_eq!(send_as(&mut ok, "BAD", "HOST11", "x"), 2);
    assert_eq!(send_as(&mut ok, "BARD", "HOST11", "a poem"), 0);
    let inbox = svc.inbox();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["from"], "BARD");
    let status = stdout(&svc.cli(&["messenger", "status"]));
    assert!(
        status.contains("dropped:       3 (denied_address 1, denied_sender 2)"),
        "{status}"
    );
}

#[test]
fn a_full_inbox_refuses_and_loses_nothing() {
    let svc = Service::start("HOST12", "", "[limits]\ninbox_quota = 3\n");
    let mut s = connect_from("127.0.0.1", svc.session);
    let classes: Vec<u8> = (0..5)
        .map(|i| send_as(&mut s, "BOB", "HOST12", &format!("m{i}")))
        .collect();
    // The sender is told (ERRSRV) instead of the message vanishing.
    assert_eq!(classes, [0, 0, 0, 2, 2]);
    let texts: Vec<String> = svc
        .inbox()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["m0", "m1", "m2"]);
    let status = stdout(&svc.cli(&["messenger", "status"]));
    assert!(status.contains("(inbox_quota 2)"), "{status}");
}

#[test]
fn sessions_per_source_are_capped() {
    let svc = Service::start("HOST13", "", "[limits]\nmax_connections_per_source = 2\n");
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| connect_from("127.0.0.4", svc.session))
        .collect();
    // Both held sessions work.
    assert_eq!(send_as(&mut held[0], "BOB", "HOST13", "one"), 0);
    assert_eq!(send_as(&mut held[1], "BOB", "HOST13", "two"), 0);
    // A third from the same address is closed at once.
    let mut third = connect_from("127.0.0.4", svc.session);
    assert_closed_unanswered(&mut third, "HOST13");
    // Another address is served meanwhile, and a slot frees when a session ends.
    let mut other = connect_from("127.0.0.5", svc.session);
    assert_eq!(send_as(&mut other, "ALICE", "HOST13", "three"), 0);
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut s = connect_from("127.0.0.4", svc.session);
        let mut body = b"\x04BOB\x00\x04HOST13\x00\x01".to_vec();
        body.extend_from_slice(&4u16.to_le_bytes());
        body.extend_from_slice(b"four");
        let _ = s.write_all(&nbss(&smb(0xD0, &[], &body)));
        if let Some(frame) = read_frame(&mut s) {
            again = Some(frame[5]);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(again, Some(0));
    assert_eq!(svc.inbox().len(), 4);
    let status = stdout(&svc.cli(&["messenger", "status"]));
    assert!(status.contains("source_connections"), "{status}");
}

#[test]
fn users_see_only_their_own_and_the_hosts_messages() {
    if !crate::harness::require(
        crate::harness::have("runuser") && crate::harness::is_root(),
        "root and runuser",
    ) {
        return;
    }
    let svc = Service::start("HOST10", "", "");
    let out = svc.cli_as("nobody", &["name", "mine", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = svc.cli(&["name", "rootonly", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (to, text) in [
        ("HOST10", "for everyone"),
        ("MINE", "for nobody"),
        ("ROOTONLY", "for root"),
    ] {
        let out = svc.cli(&["send", to, text]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = svc.cli_as("nobody", &["inbox", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seen: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let texts: Vec<&str> = seen.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["for everyone", "for nobody"]);
    // Root sees all three; nobody cannot read root's message by id, nor delete root's alias.
    let all = svc.inbox();
    assert_eq!(all.len(), 3);
    let root_id = all[2]["id"].as_i64().unwrap().to_string();
    assert!(!svc
        .cli_as("nobody", &["inbox", "read", &root_id])
        .status
        .success());
    let out = svc.cli_as("nobody", &["name", "rootonly", "/delete"]);
    assert!(
        stderr(&out).contains("ERROR_ACCESS_DENIED (5)"),
        "{}",
        stderr(&out)
    );
}

/// One utmp record (glibc x86_64 layout, 384 bytes) of a user process.
pub(crate) fn utmp_record(pid: u32, line: &str, user: &str, host: &str) -> Vec<u8> {
    let mut r = vec![0u8; 384];
    r[0..2].copy_from_slice(&7i16.to_le_bytes()); // USER_PROCESS
    r[4..8].copy_from_slice(&pid.to_le_bytes());
    r[8..8 + line.len()].copy_from_slice(line.as_bytes());
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r[76..76 + host.len()].copy_from_slice(host.as_bytes());
    r
}

#[test]
fn users_gets_one_copy_per_person_and_reports_who_was_unreachable() {
    if !crate::harness::require(
        crate::harness::is_root()
            && crate::harness::have("useradd")
            && crate::harness::have("runuser"),
        "root, useradd and runuser (real test accounts)",
    ) {
        return;
    }
    // Real accounts: two logged in locally (one twice), one remotely from a
    // host with no messenger, one with a stale entry; nsuwall may broadcast.
    let _accounts = crate::harness::TestUsers::create(
        &["nsuone", "nsutwo", "nsufar", "nsudead", "nsuwall"],
        Some(("nsuwallers", &["nsuwall"])),
    );
    let dir = tempfile::tempdir().unwrap();
    let utmp = dir.path().join("utmp");
    let me = std::process::id();
    let records = [
        utmp_record(me, "pts/1", "nsuone", ""),
        utmp_record(me, "pts/2", "nsuone", ""),
        utmp_record(me, "pts/3", "nsutwo", ""),
        utmp_record(me, "pts/4", "nsufar", "127.0.0.2"),
        utmp_record(999_999_999, "pts/5", "nsudead", ""),
    ]
    .concat();
    std::fs::write(&utmp, records).unwrap();
    let top = format!(
        "utmp_path = \"{}\"\nbroadcast_group = \"nsuwallers\"",
        utmp.display()
    );
    let svc = Service::start("HOST11", &top, "");
    // Logged-in users become aliases (read at start, then every 5 s).
    let mut listed = String::new();
    for _ in 0..100 {
        listed = stdout(&svc.cli(&["name"]));
        if listed.contains("NSUTWO") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        listed.contains("NSUONE") && !listed.contains("NSUDEAD"),
        "{listed}"
    );
    // Only root and the broadcast group may send to /USERS.
    let out = svc.cli_as("nsuone", &["send", "/users", "spam"]);
    assert!(
        stderr(&out).contains("ERROR_ACCESS_DENIED (5)"),
        "{}",
        stderr(&out)
    );
    let out = svc.cli_as(
        "nsuwall",
        &["send", "/USERS", "This server will shut down in 5 minutes"],
    );
    let (so, se) = (stdout(&out), stderr(&out));
    assert!(
        so.contains("sent to nsuone") && so.contains("sent to nsutwo"),
        "{so}"
    );
    assert!(se.contains("nsufar") && se.contains("(2136)"), "{se}");
    assert_eq!(out.status.code(), Some(2));
    let inbox = svc.wait_inbox(2);
    let mut to: Vec<&str> = inbox.iter().map(|m| m["to"].as_str().unwrap()).collect();
    // Copies go out concurrently, so they are stored in any order.
    to.sort_unstable();
    assert_eq!(to, ["NSUONE", "NSUTWO"], "one copy per person");
    // Each person reads exactly their own copy, as themselves.
    for user in ["nsuone", "nsutwo"] {
        let out = svc.cli_as(user, &["inbox", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let seen: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(seen.len(), 1, "{user}: {seen:?}");
        assert_eq!(seen[0]["recipient_user"], user);
        assert_eq!(seen[0]["from"], "nsuwall");
        assert_eq!(seen[0]["text"], "This server will shut down in 5 minutes");
    }
}

#[test]
fn sessions_come_from_utmp_where_logind_is_absent() {
    if std::path::Path::new("/run/systemd/system").exists() {
        eprintln!("systemd runs here: `sessions = \"auto\"` reads logind, not the test's utmp");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let utmp = dir.path().join("utmp");
    std::fs::write(
        &utmp,
        utmp_record(std::process::id(), "pts/9", "nsauto", ""),
    )
    .unwrap();
    let auto = Service::start(
        "HOST14",
        &format!("sessions = \"auto\"\nutmp_path = \"{}\"", utmp.display()),
        "",
    );
    let forced = Service::start(
        "HOST15",
        &format!("sessions = \"logind\"\nutmp_path = \"{}\"", utmp.display()),
        "",
    );
    let mut listed = String::new();
    for _ in 0..100 {
        listed = stdout(&auto.cli(&["name"]));
        if listed.contains("NSAUTO") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        listed.contains("NSAUTO"),
        "auto falls back to utmp: {listed}"
    );
    // Told to ask logind only, the service finds nobody rather than guessing.
    let out = forced.cli(&["send", "/USERS", "anyone?"]);
    assert!(
        stdout(&out).contains("No user has a session on this server."),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stdout(&forced.cli(&["name"])).contains("NSAUTO"));
}

#[test]
fn inbox_life_cycle_search_receipts_delete_log_and_retention() {
    let mut svc = Service::start(
        "HOST16",
        "",
        "[log]\nmessages = true\n[inbox]\nmax_messages = 3\n",
    );
    for text in ["lunch at noon", "server going DOWN", "pay day", "coffee?"] {
        let out = svc.cli(&["send", "HOST16", text]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let all = svc.wait_inbox(4);
    let id = |i: usize| all[i]["id"].as_i64().unwrap().to_string();
    // Search: sender, alias or text, ASCII case-insensitive.
    let found = stdout(&svc.cli(&["inbox", "--search", "down"]));
    assert!(
        found.contains("server going DOWN") && !found.contains("lunch"),
        "{found}"
    );
    // Receipts: new, then read with its times.
    assert!(stdout(&svc.cli(&["inbox"])).contains(" new "));
    let read = stdout(&svc.cli(&["inbox", "read", &id(0)]));
    assert!(
        read.contains("receipt: stored ") && read.contains(", read 20"),
        "{read}"
    );
    let json: Vec<serde_json::Value> =
        serde_json::from_slice(&svc.cli(&["inbox", "--json"]).stdout).unwrap();
    assert!(json[0]["read_at"].is_i64() && json[1]["read_at"].is_null());
    // Delete one by id, then every read one (the first).
    let out = svc.cli(&["inbox", "delete", &id(1)]);
    assert!(
        stdout(&out).contains("1 message(s) deleted"),
        "{}",
        stderr(&out)
    );
    let out = svc.cli(&["inbox", "delete", "--read"]);
    assert!(
        stdout(&out).contains("1 message(s) deleted"),
        "{}",
        stderr(&out)
    );
    let left: Vec<String> = svc
        .inbox()
        .iter()
        .map(|m| m["text"].as_str().unwrap().into())
        .collect();
    assert_eq!(left, ["pay day", "coffee?"]);
    // NET LOG: every stored message, one JSON line each, deletions or not.
    let log = std::fs::read_to_string(svc.dir.path().join("state/messages.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert_eq!(lines[1]["text"], "server going DOWN");
    assert_eq!(lines[1]["to"], "HOST16");
    assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
    // Retention (max 3 per inbox) runs at start: two more, then a restart.
    for text in ["five", "six"] {
        assert!(svc.cli(&["send", "HOST16", text]).status.success());
    }
    svc.crash_and_restart();
    let kept: Vec<String> = svc
        .inbox()
        .iter()
        .map(|m| m["text"].as_str().unwrap().into())
        .collect();
    assert_eq!(kept, ["coffee?", "five", "six"]);
}

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Waits (bounded) until `netsend queue` on `svc` shows `what`.
fn wait_queue(svc: &Service, what: &str) -> String {
    let mut shown = String::new();
    for _ in 0..150 {
        shown = stdout(&svc.cli(&["queue"]));
        if shown.contains(what) {
            return shown;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the queue never showed {what:?}:\n{shown}");
}

#[test]
fn a_queued_message_is_delivered_once_its_name_appears() {
    let (later, never) = (free_port(), free_port());
    let sender = Service::start(
        "QSENDER",
        "",
        &format!(
            "[[static_names]]\nname = \"LATER\"\naddress = \"127.0.0.1:{later}\"\n\
             [[static_names]]\nname = \"NEVER\"\naddress = \"127.0.0.1:{never}\"\n\
             [queue]\nretry_secs = 1\nmax_retry_secs = 1\nmax_per_user = 3\n"
        ),
    );
    // Not reachable now: without --queue it fails, with it it waits.
    let out = sender.cli(&["send", "LATER", "now or never"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let out = sender.cli(&["send", "--queue", "LATER", "see you later"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("queued as 1"), "{}", stdout(&out));
    wait_queue(&sender, "queued, ");
    // An expiry of 0 minutes is refused; a second message is cancelled.
    let out = sender.cli(&["send", "--queue", "--expire", "0", "NEVER", "too late"]);
    assert!(stderr(&out).contains("(87)"), "{}", stderr(&out));
    let out = sender.cli(&["send", "--queue", "NEVER", "cancel me"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // At most three may be held at once.
    let out = sender.cli(&["send", "--queue", "NEVER", "third waiting"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sender.cli(&["send", "--queue", "NEVER", "one too many"]);
    assert!(stderr(&out).contains("(71)"), "{}", stderr(&out));
    for id in ["2", "3"] {
        let out = sender.cli(&["queue", "cancel", id]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // The recipient comes up: the first is delivered, once.
    let receiver = Service::start_in(None, "LATER", "127.0.0.1", later, 0, "", "");
    let shown = wait_queue(&sender, "delivered at");
    assert!(shown.contains("cancelled at"), "{shown}");
    let inbox = receiver.wait_inbox(1);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.inbox().len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["text"], "see you later");
    // Only the owner sees and cancels their queue.
    if crate::harness::have("runuser") && crate::harness::is_root() {
        let theirs = stdout(&sender.cli_as("nobody", &["queue"]));
        assert!(theirs.contains("No queued messages."), "{theirs}");
    }
}

#[test]
fn inbox_follow_is_told_of_each_message_as_it_is_stored() {
    use std::io::BufRead as _;
    use std::os::unix::net::UnixStream;
    use std::process::{Command, Stdio};

    let mut svc = Service::start("HOSTFOLLOW", "", "");
    // A request with a wait is not answered while nothing is stored...
    let mut waiting = UnixStream::connect(svc.dir.path().join("control.sock")).unwrap();
    waiting
        .write_all(
            b"{\"op\":\"inbox_list\",\"unread_only\":false,\"after_id\":null,\
              \"limit\":100,\"wait_ms\":60000}\n",
        )
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = waiting.read(&mut byte);
    assert!(early.is_err(), "answered before any message: {early:?}");
    // ...and `inbox --follow` prints nothing yet.
    let mut follow = Command::new(crate::harness::netsend_bin())
        .arg("--config")
        .arg(&svc.config)
        .args(["inbox", "--follow", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // ...until a message is stored: then both hear of it.
    let out = svc.cli(&["send", "HOSTFOLLOW", "first", "one"]);
    assert!(out.status.success(), "{}", stderr(&out));
    waiting
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(&waiting)
        .read_line(&mut answer)
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["messages"][0]["text"], "first one", "{answer}");
    for text in ["first one", "second one", "third one"] {
        if text == "third one" {
            // The follower outlives a restart of the service (here a crash).
            svc.crash_and_restart();
        }
        if text != "first one" {
            let out = svc.cli(&["send", "HOSTFOLLOW", text]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) else {
            let _ = follow.kill();
            panic!("inbox --follow printed no {text:?}");
        };
        let message: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(message["text"], text);
    }
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn control_clients_are_capped_and_the_service_recovers() {
    use std::os::unix::net::UnixStream;
    let svc = Service::start("HOSTCAP", "", "");
    let socket = svc.dir.path().join("control.sock");
    // 512 clients that connect and say nothing hold every slot...
    let held: Vec<UnixStream> = (0..512)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    // ...so one more is closed without an answer.
    let mut extra = UnixStream::connect(&socket).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    extra.write_all(b"{\"op\":\"status\"}\n").ok();
    let mut answer = Vec::new();
    let read = extra.read_to_end(&mut answer);
    let closed = match &read {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(
        answer.is_empty() && closed,
        "over the cap: {read:?} {:?}",
        String::from_utf8_lossy(&answer)
    );
    // Once they leave, clients are served again.
    drop(held);
    // One ordinary user may hold at most 64 clients; root is still served
    // while they do.
    if crate::harness::require(
        crate::harness::is_root() && std::path::Path::new("/usr/bin/python3").exists(),
        "root, runuser and /usr/bin/python3",
    ) {
        let script = r#"
import socket, sys
def connect():
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    return s
held = [connect() for _ in range(65)]
answered = 0
for s in held:
    s.settimeout(20)
    try:
        s.sendall(b'{"op":"status"}\n')
        answered += len(s.recv(100)) > 0
    except (ConnectionResetError, BrokenPipeError):
        pass
print(answered, flush=True)
sys.stdin.read()
"#;
        let mut user = std::process::Command::new("runuser")
            .args(["-u", "nobody", "--", "/usr/bin/python3", "-c", script])
            .arg(&socket)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(user.stdout.as_mut().unwrap()),
            &mut first,
        )
        .unwrap();
        let root = svc.cli(&["messenger", "status"]);
        drop(user.stdin.take());
        let _ = user.wait();
        assert_eq!(first.trim(), "64", "clients of one user served out of 65");
        assert!(root.status.success(), "{}", stderr(&root));
    }
    let mut status = svc.cli(&["messenger", "status"]);
    for _ in 0..50 {
        if status.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        status = svc.cli(&["messenger", "status"]);
    }
    assert!(status.status.success(), "{}", stderr(&status));
    // A request line over 1 MiB is answered with 87 and the connection closed
    // (the service reads no further); the service goes on serving.
    let mut long = UnixStream::connect(&socket).unwrap();
    long.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let sent = long.write_all(&vec![b'x'; 2 << 20]);
    let mut answer = String::new();
    let _ = long.read_to_string(&mut answer);
    assert!(
        answer.contains("\"code\":87") && answer.contains("longer than"),
        "{sent:?} {answer:?}"
    );
    assert_eq!(answer.lines().count(), 1, "{answer:?}");
    assert!(svc.cli(&["messenger", "status"]).status.success());
}
