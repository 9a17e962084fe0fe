//! Durable before acknowledged: load, SIGKILL at pseudo-random moments, restart;
//! every message whose success reply reached the sender is in the inbox exactly
//! once, and the database passes SQLite's integrity check. A sender that
//! repeats a message after its own crash (a gateway, the queue) tags it, and
//! the repeat is acknowledged and stored once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::Service;

/// Sends single-block messages on one connection until `stop`, recording the
/// texts whose success reply arrived.
fn load(addr: SocketAddr, tag: String, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<String>>>) {
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) && i < 100_000 {
        let Ok(mut s) = TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let text = format!("{tag}-{i}");
            i += 1;
            let mut body = b"\x04LOAD\x00\x04CRASHY\x00\x01".to_vec();
            body.extend_from_slice(&(text.len() as u16).to_le_bytes());
            body.extend_from_slice(text.as_bytes());
            let mut smb = b"\xFFSMB\xD0".to_vec();
            smb.extend_from_slice(&[0; 27]);
            smb.push(0);
            smb.extend_from_slice(&(body.len() as u16).to_le_bytes());
            smb.extend_from_slice(&body);
            let mut frame = vec![0, 0, (smb.len() >> 8) as u8, smb.len() as u8];
            frame.extend_from_slice(&smb);
            if s.write_all(&frame).is_err() {
                break;
            }
            let mut reply = [0u8; 39];
            if s.read_exact(&mut reply).is_err() {
                break;
            }
            // Success: status bytes 5..9 of the SMB are zero.
            if reply[4 + 5..4 + 9] == [0, 0, 0, 0] {
                acked.lock().unwrap().push(text);
            }
        }
    }
}

#[test]
fn acknowledged_messages_survive_sigkill() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unlimited = "[limits]\nmessages_per_minute = 0\nsender_messages_per_minute = 0\n";
    let mut svc = Service::start_in(None, "CRASHY", "127.0.0.1", port, 0, "", unlimited);
    let addr = svc.session;
    let acked = Arc::new(Mutex::new(Vec::new()));
    // A fixed pseudo-random sequence: the test is repeatable.
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for round in 0..5 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|t| {
                let (stop, acked) = (stop.clone(), acked.clone());
                std::thread::spawn(move || load(addr, format!("r{round}t{t}"), stop, acked))
            })
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(100 + seed % 400));
        svc.crash_and_restart();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 100, "the load barely ran: {}", acked.len());
    let inbox = svc.inbox();
    let mut stored: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for m in &inbox {
        *stored.entry(m["text"].as_str().unwrap()).or_default() += 1;
    }
    for text in &acked {
        let n = stored.get(text.as_str()).copied().unwrap_or(0);
        assert_eq!(n, 1, "acknowledged message {text} stored {n} times");
    }
    let db = rusqlite::Connection::open(svc.dir.path().join("state/inbox.db")).unwrap();
    let verdict: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
    eprintln!(
        "{} acknowledged, {} stored, across 5 crashes",
        acked.len(),
        stored.len()
    );
}

#[test]
fn a_tagged_repeat_is_acknowledged_and_stored_once_across_a_restart() {
    use netsend_proto::delivery_tag::DeliveryTag;
    use netsend_proto::sender::SendOptions;

    use crate::storage::send_message_with;

    let mut svc = Service::start("TAGGED", "", "");
    let long = "a long text that takes several blocks; ".repeat(10);
    for (text, single) in [("tagged once", true), (long.as_str(), false)] {
        let tagged = SendOptions {
            tag: Some(DeliveryTag::for_site_message(text)),
            single_block_when_fits: single,
            ..SendOptions::default()
        };
        // The sender crashed after our reply, came back and sends again,
        // here once before our restart and once after.
        send_message_with(svc.session, "TAGGED", text, tagged).unwrap();
        send_message_with(svc.session, "TAGGED", text, tagged).unwrap();
        svc.crash_and_restart();
        send_message_with(svc.session, "TAGGED", text, tagged).unwrap();
        // The same text untagged is a new message each time, as before.
        send_message_with(svc.session, "TAGGED", text, SendOptions::default()).unwrap();
        send_message_with(svc.session, "TAGGED", text, SendOptions::default()).unwrap();
    }
    let inbox = svc.wait_inbox(6);
    let count = |text: &str| inbox.iter().filter(|m| m["text"] == text).count();
    // Each text: once tagged (three sends), twice untagged.
    assert_eq!(count("tagged once"), 3, "{inbox:?}");
    assert_eq!(count(long.as_str()), 3, "{inbox:?}");
    assert_eq!(inbox.len(), 6, "{inbox:?}");
    let log = svc.log_text();
    assert!(
        log.contains("repeat of a stored message"),
        "the repeats are logged: {log}"
    );
}
