//! The site gateway against a real `nats-server -js` (one node, one
//! replica): a message another site published for this site is delivered
//! here once, even when the stream holds it twice.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{have, require, Service};

/// One JetStream node on loopback in a scratch directory, killed on drop.
struct Nats {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nats {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    /// Publishes `payload` on `subject` with the NATS text protocol, with a
    /// `Nats-Msg-Id` header when `msg_id` is given, and waits for the
    /// server's PONG (so the publish was processed).
    fn publish(&self, subject: &str, msg_id: Option<&str>, payload: &[u8]) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut info = String::new();
        reader.read_line(&mut info).unwrap();
        assert!(info.starts_with("INFO"), "{info}");
        let mut out = b"CONNECT {\"verbose\":false,\"headers\":true}\r\n".to_vec();
        match msg_id {
            Some(id) => {
                let headers = format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n");
                out.extend_from_slice(
                    format!(
                        "HPUB {subject} {} {}\r\n{headers}",
                        headers.len(),
                        headers.len() + payload.len()
                    )
                    .as_bytes(),
                );
            }
            None => {
                out.extend_from_slice(format!("PUB {subject} {}\r\n", payload.len()).as_bytes())
            }
        }
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\nPING\r\n");
        stream.write_all(&out).unwrap();
        let mut line = String::new();
        for _ in 0..10 {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.starts_with("PONG") {
                return;
            }
            assert!(!line.starts_with("-ERR"), "{line}");
        }
        panic!("no PONG from nats-server");
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until the service's log holds `text`.
fn wait_log(service: &mut Service, text: &str) -> bool {
    for _ in 0..100 {
        if service.log_text().contains(text) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_message_from_another_site_is_delivered_once_even_when_stored_twice() {
    if !require(have("nats-server"), "nats-server (Debian's nats-server)") {
        return;
    }
    let nats = Nats::start();
    let gateway = format!(
        "[gateway]\nsite = \"south\"\nnats = [\"nats://127.0.0.1:{}\"]\nreplicas = 1\n",
        nats.port
    );
    let mut south = Service::start("SOUTHGW", "", &gateway);
    assert!(
        wait_log(&mut south, "stream and buckets ready"),
        "the gateway did not connect:\n{}",
        south.log_text()
    );
    let message = netsend_wire::site::SiteMessage {
        msg_id: "NORTH-e2e-1".into(),
        origin: "NORTH".into(),
        from: "ALICE".into(),
        to: "SOUTHGW".into(),
        text: "greetings from the north\u{1b}[2J".into(),
        received_ms: 1_764_650_000_000,
        sender: std::net::Ipv4Addr::new(192, 0, 2, 10),
    };
    let payload = message.to_bytes().unwrap();
    nats.publish("netsend.msg.SOUTH", Some("NORTH-e2e-1"), &payload);
    // The same payload again, without the dedup header: a second stream
    // message (another sequence), as a redelivery would look.
    nats.publish("netsend.msg.SOUTH", None, &payload);
    let inbox = south.wait_inbox(1);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["from"], "ALICE", "{inbox:?}");
    assert!(
        inbox[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("greetings from the north"),
        "{inbox:?}"
    );
    assert!(
        wait_log(&mut south, "already delivered"),
        "the second copy was not seen:\n{}",
        south.log_text()
    );
    assert_eq!(south.inbox().len(), 1);
    // The record outlives the gateway: after a restart a third copy is
    // still recognised.
    let count = |s: &mut Service, what: &str| s.log_text().matches(what).count();
    let (ready, before) = (
        count(&mut south, "stream and buckets ready"),
        count(&mut south, "already delivered"),
    );
    south.crash_and_restart();
    for _ in 0..100 {
        if count(&mut south, "stream and buckets ready") > ready {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    nats.publish("netsend.msg.SOUTH", None, &payload);
    for _ in 0..100 {
        if count(&mut south, "already delivered") > before {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        count(&mut south, "already delivered") > before,
        "{}",
        south.log_text()
    );
    assert_eq!(south.inbox().len(), 1);
    // A message for a name that is not at this site is given up, not retried.
    let mut lost = message.clone();
    lost.msg_id = "NORTH-e2e-2".into();
    lost.to = "NOBODY".into();
    nats.publish(
        "netsend.msg.SOUTH",
        Some("NORTH-e2e-2"),
        &lost.to_bytes().unwrap(),
    );
    assert!(
        wait_log(&mut south, "the name is not at this site"),
        "{}",
        south.log_text()
    );
    south.stop();
}
