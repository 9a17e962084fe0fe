//! The durable store under attack from local users: heavy inbox searches must
//! not stall the network path, and the outgoing queue and sent records stay
//! bounded and listable.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netsend_proto::sender::{ClientSession, SendOptions};
use netsend_wire::{nbss, NetbiosName};

use crate::harness::{have, is_root, netsend_bin, require, stderr, Service};

/// Sends one message to `to` at `addr` over a new NetBIOS session (session
/// request, 0xD5, 0xD7 blocks, 0xD6, as `smbclient -M` does) and returns how
/// long it took until the last acknowledgement.
fn send_message(addr: SocketAddr, to: &str, text: &str) -> Result<Duration, String> {
    let start = Instant::now();
    let called = NetbiosName::new(to, 3).map_err(|e| e.to_string())?;
    let calling = NetbiosName::new("LOADER", 0).map_err(|e| e.to_string())?;
    let mut session =
        ClientSession::new(called, calling, "LOADER", to, text, SendOptions::default());
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        while let Some(frame) = session.poll_transmit() {
            stream.write_all(&frame).map_err(|e| e.to_string())?;
        }
        if session.is_done() {
            return Ok(start.elapsed());
        }
        let len = loop {
            if let Some(n) = nbss::check_frame(&buf, 1 << 17).map_err(|e| e.to_string())? {
                break n;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed".into());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let frame: Vec<u8> = buf.drain(..len).collect();
        session
            .handle_frame(&frame)
            .map_err(|e| format!("{e:?}"))?;
    }
}

/// Throughput and latency of a sender at concurrency 1.
#[derive(Debug, Clone, Copy)]
struct Rate {
    per_sec: f64,
    p99_ms: f64,
    sent: usize,
}

/// Sends 20-byte messages one after another for `span`, as a c=1 load
/// generator does; every one must be acknowledged.
fn measure(addr: SocketAddr, to: &str, span: Duration) -> Rate {
    let start = Instant::now();
    let mut latencies = Vec::new();
    while start.elapsed() < span {
        let took = send_message(addr, to, "twenty bytes of text").expect("acknowledged");
        latencies.push(took);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    Rate {
        per_sec: latencies.len() as f64 / elapsed,
        p99_ms: p99.as_secs_f64() * 1000.0,
        sent: latencies.len(),
    }
}

/// Puts `count` stored messages of about 4 KB for the computer name `to`
/// into the running service's inbox in one transaction, as if received
/// (the setup of a well-used inbox; the service's own triggers index them).
fn fill(svc: &Service, to: &str, count: usize) {
    let text: String = "the quick brown fox jumps over the lazy dog "
        .repeat(93)
        .chars()
        .take(4000)
        .collect();
    let mut db = rusqlite::Connection::open(svc.dir.path().join("state/inbox.db")).unwrap();
    db.busy_timeout(Duration::from_secs(30)).unwrap();
    let tx = db.transaction().unwrap();
    for i in 0..count {
        tx.execute(
            "INSERT INTO messages (received_at, from_name, to_alias, source, text, transport)
             VALUES (?1, 'LOADER', ?2, '192.0.2.20:5000', ?3, 'session')",
            rusqlite::params![1_700_000_000_000i64 + i as i64, to, text],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// `netsend inbox --search` in a loop as another Unix user, as long as it
/// runs; each finished search prints `ok` or `failed` on its stdout.
struct SearchLoop {
    child: std::process::Child,
    outcomes: std::sync::mpsc::Receiver<bool>,
}

impl SearchLoop {
    fn start(user: &str, config: &std::path::Path, pattern: &str) -> Self {
        let account = nix::unistd::User::from_name(user)
            .expect("read the account")
            .expect("the account exists");
        let mut child = Command::new("setpriv")
            .arg(format!("--reuid={}", account.uid))
            .arg(format!("--regid={}", account.gid))
            .args(["--clear-groups", "--"])
            .args(["sh", "-c"])
            .arg(
                "while :; do if \"$0\" --config \"$1\" inbox --search \"$2\" >/dev/null; \
                 then echo ok; else echo failed; fi; done",
            )
            .arg(netsend_bin())
            .arg(config)
            .arg(pattern)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the search loop");
        let out = child.stdout.take().expect("piped");
        let (tx, outcomes) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line == "ok").is_err() {
                    return;
                }
            }
        });
        Self { child, outcomes }
    }

    /// Searches finished so far: (succeeded, failed).
    fn outcomes(&self) -> (usize, usize) {
        let all: Vec<bool> = self.outcomes.try_iter().collect();
        let ok = all.iter().filter(|ok| **ok).count();
        (ok, all.len() - ok)
    }
}

impl Drop for SearchLoop {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

#[test]
fn heavy_searches_by_a_local_user_do_not_stall_tcp_139() {
    if !require(
        is_root() && have("setpriv"),
        "root and setpriv (searches as another Unix user)",
    ) {
        return;
    }
    let svc = Service::start(
        "STORE5",
        "",
        "[limits]\nmessages_per_minute = 0\nsender_messages_per_minute = 0\n\
         inbox_quota = 0\nmax_connections_per_source = 64\n",
    );
    // 3,000 messages of 4 KB to the computer name, which every user may read
    // (and so search).
    fill(&svc, "STORE5", 3000);
    let idle = measure(svc.session, "STORE5", Duration::from_secs(4));
    // A long pattern that nearly matches everywhere and matches nowhere.
    let pattern = format!("{}!", "the quick brown fox jumps over the lazy dog ".repeat(4));
    let loops: Vec<SearchLoop> = (0..2)
        .map(|_| SearchLoop::start("nobody", &svc.config, &pattern))
        .collect();
    // Let both loops get going before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let busy = measure(svc.session, "STORE5", Duration::from_secs(4));
    std::thread::sleep(Duration::from_millis(500));
    let (ok, failed) = loops
        .iter()
        .map(SearchLoop::outcomes)
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    drop(loops);
    eprintln!(
        "idle: {:.0} msg/s, p99 {:.1} ms ({} sent); under two search loops: {:.0} msg/s, \
         p99 {:.1} ms ({} sent); searches: {ok} finished, {failed} failed",
        idle.per_sec, idle.p99_ms, idle.sent, busy.per_sec, busy.p99_ms, busy.sent
    );
    assert!(ok >= 2 && failed == 0, "the searches must run: {ok} ok, {failed} failed");
    assert!(
        busy.per_sec >= idle.per_sec / 2.0,
        "TCP 139 under searches: {busy:?}, idle: {idle:?}"
    );
    assert!(
        busy.p99_ms <= 250.0,
        "TCP 139 p99 under searches: {busy:?}, idle: {idle:?}"
    );
    // Every message the loader sent was stored.
    let out = svc.cli(&["messenger", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
