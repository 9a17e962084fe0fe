//! Escape sequences from the network never reach a terminal through the CLI:
//! a hostile message from a raw socket, a hostile remote-call server and
//! another Unix user's input, shown by every listing, `read`, `--follow`,
//! `queue`, `status`, `name` and error details; `--json` escapes C1 and bidi
//! controls; log lines cannot be forged.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use netsend_control::remote::{check_frame, KeyPair};
use netsend_control::Response;
use netsend_service::remote::{Responder, Step};

use crate::harness::{have, is_root, netsend_bin, stderr, stdout, Service};
use crate::local::send_as;
use crate::remote::Caller;

/// The attack text: OSC retitle, clear screen, colour, 8-bit CSI and OSC,
/// a right-to-left override, and plain words around them.
const EVIL: &str = "before \x1b]0;pwned\x07\x1b[2J\x1b[31mred \u{9b}2J\u{9d}0;pwned\u{9c}\u{202e}desrever\u{202c} end";
/// A sender name with a clear-screen, a retitle and a line break that would
/// start a forged log line.
const EVIL_FROM: &str = "\x1b[2JEVE\r\nFORGED\x1b]0;x\x07";

/// Asserts that `out` holds no control character but line feeds, no bidi
/// control, and nothing of the removed sequences.
fn assert_clean(what: &str, out: &str) {
    let bad: Vec<char> = out
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(bad.is_empty(), "{what} printed {bad:?}: {out:?}");
    assert!(!out.contains("pwned"), "{what}: {out:?}");
}

/// A remote-call server that completes the real Noise handshake and then
/// answers each request with the next of `answers` (one per connection).
fn hostile_server(answers: Vec<Response>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let key = KeyPair::generate().unwrap();
    std::thread::spawn(move || {
        for answer in answers {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut responder = Responder::new(&key).unwrap();
            let mut buf = Vec::new();
            loop {
                let len = loop {
                    if let Some(n) = check_frame(&buf) {
                        break n;
                    }
                    let mut chunk = [0u8; 4096];
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let frame: Vec<u8> = buf.drain(..len).collect();
                match responder.handle(&frame[2..]).unwrap() {
                    Step::Send(bytes) => s.write_all(&bytes).unwrap(),
                    Step::Read => {}
                    Step::Request(_) => {
                        s.write_all(&responder.seal(&answer).unwrap()).unwrap();
                        break;
                    }
                }
            }
        }
    });
    port
}

#[test]
fn hostile_input_reaches_no_terminal_through_the_cli() {
    let receiver = Service::start("ESCPEER", "", "");
    let mut svc = Service::start(
        "ESCHOST",
        "",
        &format!(
            "[[static_names]]\nname = \"NEVER\"\naddress = \"127.0.0.1:9\"\n\
             [[static_names]]\nname = \"ESCPEER\"\naddress = \"{}\"\n[queue]\nretry_secs = 60\n",
            receiver.session
        ),
    );
    let mut follow = Command::new(netsend_bin())
        .arg("--config")
        .arg(&svc.config)
        .args(["inbox", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let follow_out = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(follow_out).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The attack comes from a raw socket: a single-block message.
    let mut s = TcpStream::connect(svc.session).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(send_as(&mut s, EVIL_FROM, "ESCHOST", EVIL), 0);
    let stored = svc.wait_inbox(1);
    assert_eq!(
        stored[0]["text"],
        netsend_control::json::visible(EVIL),
        "stored as received, its controls visible in --json"
    );
    let id = stored[0]["id"].as_i64().unwrap().to_string();

    let listing = stdout(&svc.cli(&["inbox"]));
    assert_clean("inbox", &listing);
    assert!(
        listing.contains("EVE FORGED") && listing.contains("before red"),
        "{listing}"
    );
    let full = stdout(&svc.cli(&["inbox", "read", &id]));
    assert_clean("inbox read", &full);
    assert!(full.contains("before red desrever end"), "{full}");
    let line = lines.recv_timeout(Duration::from_secs(30));
    let _ = follow.kill();
    let _ = follow.wait();
    let line = line.expect("inbox --follow printed the message");
    assert_clean("inbox --follow", &line);
    assert!(line.contains("before red"), "{line}");

    // --json: neither its raw bytes nor a decoded value (what `jq -r .text`
    // prints) hold a control character, only visible `\uXXXX` text.
    for args in [&["inbox", "--json"][..], &["inbox", "--json", "read", &id]] {
        let raw = svc.cli(args).stdout;
        let text = String::from_utf8(raw.clone()).unwrap();
        for escape in [
            "\\u001b", "\\u0007", "\\u009b", "\\u009d", "\\u009c", "\\u202e", "\\u202c",
        ] {
            assert!(text.contains(escape), "{args:?}: no {escape} in {text}");
        }
        assert_clean(
            &format!("{args:?}"),
            text.trim_end().replace("pwned", "").as_str(),
        );
        let value: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let message = value.as_array().map_or(&value, |a| &a[0]);
        let decoded = message["text"].as_str().unwrap();
        assert_eq!(decoded, netsend_control::json::visible(EVIL));
        assert_clean(&format!("{args:?} decoded"), &decoded.replace("pwned", ""));
    }

    // The service's own log: the name's line break is escaped, not a new line.
    let log = svc.log_text();
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a forged log line: {log}"
    );
    assert!(log.contains("EVE\\r\\nFORGED"), "{log}");
    assert!(!log.contains('\x1b'), "escape in the log: {log:?}");

    // status ID: the sender name root claimed is shown sanitised.
    let out = svc.cli(&[
        "send",
        "--from",
        "\x1b]0;pwned\x07ROOT\u{9b}2J",
        "ESCPEER",
        "x",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sent = stdout(&out);
    let receipt = sent.rsplit("netsend status ").next().unwrap().trim();
    let status = stdout(&svc.cli(&["status", receipt]));
    assert_clean("status", &status);
    assert!(status.contains("from ROOT"), "{sent}\n{status}");
    // A remote-call server that answers with hostile details and names.
    let evil_names: Response = serde_json::from_value(serde_json::json!({
        "result": "names",
        "names": [{"name": format!("A{EVIL}"), "kind": "added", "owner": EVIL,
                   "network": EVIL, "forward": EVIL}]
    }))
    .unwrap();
    let port = hostile_server(vec![
        Response::Error {
            code: 2136,
            detail: format!("{EVIL}\nnetsend: NERR_Success (0)"),
        },
        evil_names,
        serde_json::from_value(serde_json::json!({
            "result": "sent", "to": EVIL, "address": EVIL, "multi_block": false
        }))
        .unwrap(),
    ]);
    let caller = Caller::new(port);
    let server = format!("127.0.0.1:{port}");
    let out = caller.netsend(None, &["send", "--server", &server, "BOB", "hi"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_clean("error detail", &err);
    assert!(err.contains("before red"), "{err}");
    assert!(
        !err.lines().any(|l| l.starts_with("netsend: NERR_Success")),
        "a forged line in the error: {err}"
    );
    let out = caller.netsend(None, &["name", "--server", &server]);
    assert_clean("name", &stdout(&out));
    assert!(stdout(&out).contains("before red"), "{}", stdout(&out));
    let out = caller.netsend(None, &["send", "--server", &server, "BOB", "hi"]);
    assert_clean("send report", &stdout(&out));
    assert!(stdout(&out).contains("before red"), "{}", stdout(&out));

    // Another Unix user's queued text, as root lists everyone's queue.
    if is_root() && have("runuser") {
        let out = svc.cli_as("nobody", &["send", "--queue", "NEVER", EVIL]);
        assert!(out.status.success(), "{}", stderr(&out));
        let queue = stdout(&svc.cli(&["queue"]));
        assert_clean("queue", &queue);
        assert!(queue.contains("before red"), "{queue}");
    }
}

#[test]
fn hostile_names_are_escaped_in_journal_fields() {
    use crate::systemd::{field, find_event, start_journald, wait_events};
    let Some((_scratch, _daemons, svc)) = start_journald("ESCJOURNAL") else {
        return;
    };
    // One stored, one dropped, both from a raw socket.
    let mut s = TcpStream::connect(svc.session).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(send_as(&mut s, EVIL_FROM, "ESCJOURNAL", "hi"), 0);
    assert_ne!(send_as(&mut s, "SPAM\r\nX\u{9b}2J", "ESCJOURNAL", "hi"), 0);
    let log = wait_events(&svc, &["receive", "drop"]);
    let find = |event: &str| find_event(&log, event);
    // journalctl -o json gives a field with control bytes as a byte array,
    // not a string: these are strings, with the controls escaped.
    assert_eq!(
        field(find("receive"), "FROM"),
        "\\u{1b}[2JEVE\\r\\nFORGED\\u{1b}]0;x\\u{7}"
    );
    assert_eq!(field(find("drop"), "FROM"), "SPAM\\r\\nX\\u{9b}2J");
}
