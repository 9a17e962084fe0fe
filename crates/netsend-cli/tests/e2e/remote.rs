//! Calls run on another host's service (`--server`, `servername`): allowed to
//! the keys in its `[remote] administrators` and `server_operators` only, over
//! an encrypted channel whose server key the caller pins.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::harness::{have, is_root, netsend_bin, require, stderr, stdout, Service};

/// A free TCP port on loopback.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A caller: their own key file (and known_servers beside it) and a client
/// configuration naming the remote port.
pub(crate) struct Caller {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Caller {
    pub(crate) fn new(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("client.toml");
        std::fs::write(
            &config,
            format!(
                "control_socket = \"{}/none.sock\"\n[remote]\nport = {port}\n",
                dir.path().display()
            ),
        )
        .unwrap();
        Self { dir, config }
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("keys/remote.key")
    }

    /// Runs `netsend` as this caller, optionally as another Unix user.
    pub(crate) fn netsend(&self, user: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = match user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", netsend_bin()]);
                c
            }
            None => Command::new(netsend_bin()),
        };
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("NETSEND_KEY_FILE", self.key_file())
            .output()
            .unwrap()
    }

    /// This caller's public key, created on first use.
    fn public_key(&self, user: Option<&str>) -> String {
        let out = self.netsend(user, &["remote", "key"]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_owned()
    }
}

fn target(port: u16, admins: &[&str], operators: &[&str]) -> Service {
    let list = |keys: &[&str]| {
        keys.iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Service::start(
        "TARGET",
        "",
        &format!(
            "[remote]\nlisten = true\nport = {port}\nadministrators = [{}]\nserver_operators = [{}]\n",
            list(admins),
            list(operators)
        ),
    )
}

#[test]
fn administrators_and_operators_run_calls_others_are_refused() {
    let port = free_port();
    let (admin, operator, stranger) = (Caller::new(port), Caller::new(port), Caller::new(port));
    let svc = target(
        port,
        &[&admin.public_key(None)],
        &[&operator.public_key(None)],
    );
    let stranger_key = stranger.public_key(None);

    // An administrator sends on the target's behalf.
    let out = admin.netsend(
        None,
        &["send", "--server", "127.0.0.1", "TARGET", "from afar"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let inbox = svc.wait_inbox(1);
    assert_eq!(inbox[0]["text"], "from afar");
    assert_eq!(inbox[0]["from"], "root");

    // A server operator manages the target's message names.
    let out = operator.netsend(
        None,
        &["name", "REMOTEALIAS", "/add", "--server", "127.0.0.1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = operator.netsend(None, &["name", "--server", "127.0.0.1"]);
    assert!(stdout(&out).contains("REMOTEALIAS"), "{}", stdout(&out));
    assert!(stdout(&svc.cli(&["name"])).contains("REMOTEALIAS"));

    // A key the target does not list is refused, and nothing happens.
    let out = stranger.netsend(
        None,
        &["send", "--server", "127.0.0.1", "TARGET", "let me in"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("ERROR_ACCESS_DENIED (5)") && stderr(&out).contains(&stranger_key),
        "{}",
        stderr(&out)
    );
    let out = stranger.netsend(None, &["name", "INTRUDER", "/add", "--server", "127.0.0.1"]);
    assert!(stderr(&out).contains("(5)"), "{}", stderr(&out));
    assert!(!stdout(&svc.cli(&["name"])).contains("INTRUDER"));

    // An ordinary local user with a key of their own is no administrator there.
    if require(have("runuser") && is_root(), "root and runuser") {
        let user = Caller::new(port);
        std::fs::create_dir_all(user.dir.path().join("keys")).unwrap();
        let chown = Command::new("chown")
            .args(["-R", "nobody"])
            .arg(user.dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
        user.public_key(Some("nobody"));
        let out = user.netsend(
            Some("nobody"),
            &["send", "--server", "127.0.0.1", "TARGET", "hi"],
        );
        assert!(
            stderr(&out).contains("ERROR_ACCESS_DENIED (5)"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(svc.inbox().len(), 1, "nothing delivered when refused");
}

#[test]
fn a_server_whose_key_changed_is_not_trusted() {
    let port = free_port();
    let admin = Caller::new(port);
    let key = admin.public_key(None);
    let first = target(port, &[&key], &[]);
    let out = admin.netsend(None, &["send", "--server", "127.0.0.1", "TARGET", "one"]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(first);
    // Another service (another key) now answers on that address.
    let impostor = target(port, &[&key], &[]);
    let out = admin.netsend(None, &["send", "--server", "127.0.0.1", "TARGET", "two"]);
    assert!(
        stderr(&out).contains("ERROR_ACCESS_DENIED (5)") && stderr(&out).contains("known_servers"),
        "{}",
        stderr(&out)
    );
    assert!(impostor.inbox().is_empty());
}

#[test]
fn the_library_runs_calls_on_another_host() {
    if !require(Path::new("/usr/bin/python3").exists(), "/usr/bin/python3") {
        return;
    }
    let port = free_port();
    let (admin, stranger) = (Caller::new(port), Caller::new(port));
    let svc = target(port, &[&admin.public_key(None)], &[]);
    stranger.public_key(None);
    let script = r#"
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
w = lambda s: ctypes.create_string_buffer(s.encode("utf-16-le") + b"\0\0")
text = "via servername".encode("utf-16-le")
send = lib.NetMessageBufferSend
send.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_uint32]
send.restype = ctypes.c_uint32
print(send(w("\\\\127.0.0.1"), w("TARGET"), None, text, len(text)))
"#;
    let run = |caller: &Caller| {
        let out = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(crate::netapi::library())
            .env("NETSEND_CONFIG", &caller.config)
            .env("NETSEND_KEY_FILE", caller.key_file())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_owned()
    };
    assert_eq!(run(&admin), "0");
    assert_eq!(run(&stranger), "5");
    let inbox = svc.wait_inbox(1);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["text"], "via servername");
    assert_eq!(inbox[0]["from"], "root");
}

#[test]
fn a_server_key_pinned_beforehand_is_the_only_one_accepted() {
    let port = free_port();
    let (admin, misled) = (Caller::new(port), Caller::new(port));
    let misled_key = misled.public_key(None);
    let svc = target(port, &[&admin.public_key(None), &misled_key], &[]);
    // The target's administrator reads its key off `messenger status`.
    let status = stdout(&svc.cli(&["messenger", "status"]));
    let key = status
        .lines()
        .find_map(|l| l.trim().strip_prefix("remote calls:"))
        .and_then(|rest| rest.split("(key ").nth(1))
        .map(|k| k.trim_end_matches(')').to_owned())
        .unwrap_or_else(|| panic!("no remote key in {status}"));
    let send = |caller: &Caller, text: &str| {
        caller.netsend(None, &["send", "--server", "127.0.0.1", "TARGET", text])
    };

    // Pinned before the first call, the real key is accepted.
    let out = admin.netsend(None, &["remote", "trust", "127.0.0.1", &key]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stdout(&out)
    );
    let out = send(&admin, "pinned");
    assert!(out.status.success(), "{}", stderr(&out));

    // A caller who pinned another key (an impostor's, say) is refused rather
    // than trusting whoever answers, and nothing is delivered...
    let out = misled.netsend(None, &["remote", "trust", "127.0.0.1", &misled_key]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = send(&misled, "misled");
    assert!(
        stderr(&out).contains("ERROR_ACCESS_DENIED (5)") && stderr(&out).contains("known_servers"),
        "{}",
        stderr(&out)
    );
    // ...until the real key is pinned in its place.
    let out = misled.netsend(None, &["remote", "trust", "127.0.0.1", &key]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = send(&misled, "mended");
    assert!(out.status.success(), "{}", stderr(&out));

    // A key that is not one is refused.
    let out = admin.netsend(None, &["remote", "trust", "127.0.0.1", "not-a-key"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("ERROR_INVALID_PARAMETER (87)"),
        "{}",
        stderr(&out)
    );

    let inbox = svc.wait_inbox(2);
    let texts: Vec<&str> = inbox.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["pinned", "mended"]);
}

/// Whether the server closed `s` within `limit` (without ever answering).
fn closed_within(s: &mut std::net::TcpStream, limit: Duration) -> bool {
    use std::io::Read as _;
    s.set_read_timeout(Some(limit)).unwrap();
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn silent_callers_from_one_address_hold_four_slots_at_most() {
    let port = free_port();
    let admin = Caller::new(port);
    let svc = target(port, &[&admin.public_key(None)], &[]);
    let remote = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // One address opens as many connections as the service serves calls, and
    // never says a word.
    let mut silent: Vec<std::net::TcpStream> = (0..16)
        .map(|_| crate::local::connect_from("127.0.0.2", remote))
        .collect();
    // Beyond its share the service closes them at once...
    let closed_at_once = silent
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_millis(500)))
        .filter(|closed| *closed)
        .count();
    assert_eq!(closed_at_once, 12, "16 silent connections from one address");
    // ...so an administrator elsewhere still gets through.
    let out = admin.netsend(
        None,
        &["send", "--server", "127.0.0.1", "TARGET", "still here"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(svc.wait_inbox(1)[0]["text"], "still here");
}

#[test]
fn silent_callers_are_closed_at_the_handshake_deadline() {
    let port = free_port();
    let admin = Caller::new(port);
    let svc = target(port, &[&admin.public_key(None)], &[]);
    let remote = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // Four addresses, four silent connections each: every slot is taken.
    let mut silent: Vec<std::net::TcpStream> = (3..7)
        .flat_map(|host| (0..4).map(move |_| format!("127.0.0.{host}")))
        .map(|from| crate::local::connect_from(&from, remote))
        .collect();
    let opened = Instant::now();
    // They are closed once the handshake deadline passes, long before a
    // whole call's 30 s...
    let mut closed = 0;
    for s in &mut silent {
        let left = Duration::from_secs(15).saturating_sub(opened.elapsed());
        if closed_within(s, left.max(Duration::from_millis(1))) {
            closed += 1;
        }
    }
    assert_eq!(closed, 16, "silent connections closed within 15 s");
    assert!(
        opened.elapsed() >= Duration::from_secs(4),
        "{:?}",
        opened.elapsed()
    );
    // ...and the slots serve real calls again.
    let out = admin.netsend(
        None,
        &["send", "--server", "127.0.0.1", "TARGET", "after them"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(svc.wait_inbox(1)[0]["text"], "after them");
}

#[test]
fn an_answer_too_long_for_one_frame_is_an_error_not_cut() {
    let port = free_port();
    let admin = Caller::new(port);
    let mut svc = Service::start(
        "TARGET",
        "",
        &format!(
            "[limits]\nmax_aliases = 2048\n[remote]\nlisten = true\nport = {port}\nadministrators = [\"{}\"]\n",
            admin.public_key(None)
        ),
    );
    // 1500 aliases: their list is about 150 kB of JSON, more than one frame.
    let aliases: String = (0..1500)
        .map(|i| format!("[[alias]]\nname = \"MANYALIAS{i:04}\"\nowner = \"root\"\n"))
        .collect();
    crate::harness::write(&svc.dir.path().join("state/aliases.toml"), &aliases);
    svc.crash_and_restart();
    let local = stdout(&svc.cli(&["name"]));
    assert!(local.contains("MANYALIAS1499"), "{local}");
    let out = admin.netsend(None, &["name", "--server", "127.0.0.1"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("(2123)") && err.contains("bytes"), "{err}");
    // A short answer still comes whole.
    let out = admin.netsend(None, &["send", "--server", "127.0.0.1", "TARGET", "short"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_server_that_drips_its_answer_cannot_hold_the_caller() {
    use std::io::{Read as _, Write as _};
    // A "server" that takes the handshake, announces a 65535-byte frame and
    // then sends it one byte a second.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut first = [0u8; 256];
        let _ = s.read(&mut first);
        if s.write_all(&[0xFF, 0xFF]).is_err() {
            return;
        }
        for _ in 0..120 {
            if s.write_all(&[0]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let caller = Caller::new(port);
    let started = Instant::now();
    let mut child = Command::new(netsend_bin())
        .arg("--config")
        .arg(&caller.config)
        .args(["send", "--server", "127.0.0.1", "TARGET", "hello?"])
        .env("NETSEND_KEY_FILE", caller.key_file())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("the caller was still waiting after 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("(2136)"), "{}", stderr(&out));
    // The CLI allows a remote call 30 s in all.
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[test]
fn callers_from_a_denied_network_are_closed_before_the_handshake() {
    let port = free_port();
    let admin = Caller::new(port);
    let svc = Service::start(
        "TARGET",
        "",
        &format!(
            "[filter]\ndeny_networks = [\"127.0.0.1\"]\n[remote]\nlisten = true\nport = {port}\nadministrators = [\"{}\"]\n",
            admin.public_key(None)
        ),
    );
    // An administrator's key does not open a network the lists close.
    let out = admin.netsend(None, &["name", "--server", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let mut status = String::new();
    for _ in 0..50 {
        status = stdout(&svc.cli(&["messenger", "status"]));
        if status.contains("denied_address 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(status.contains("denied_address 1"), "{status}");
}
