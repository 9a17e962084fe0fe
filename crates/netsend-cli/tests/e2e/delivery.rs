//! After a message is stored: delivery hooks (a program, an HTTP POST to a
//! real server) and forwarding an alias to another host.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{is_root, require, stderr, stdout, Service};

fn wait_for(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A directory the service's unprivileged user (nobody) can use, with a hook
/// script in it.
fn hook_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let d = dir.path().display();
    let record = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > {d}/argv.tmp\ncat > {d}/stdin\nenv > {d}/env\nid -u > {d}/uid\n\
         mv {d}/argv.tmp {d}/argv\n"
    );
    let sleeper =
        format!("#!/bin/sh\necho $$ > {d}/sleeper.pid\nsleep 30\necho late > {d}/finished\n");
    for (name, text) in [("record.sh", record), ("sleeper.sh", sleeper)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

#[test]
fn exec_hooks_get_whole_arguments_and_stdin_and_are_killed_on_timeout() {
    if !require(is_root(), "root (the service drops to nobody to run hooks)") {
        return;
    }
    let hooks = hook_dir();
    let d = hooks.path().display();
    let mut svc = Service::start(
        "HOOKHOST",
        "user = \"nobody\"",
        &format!(
            "[[hooks]]\nalias = \"hookhost\"\nexec = [\"{d}/record.sh\", \"x{{to}}\", \"{{id}}\"]\n\
             [[hooks]]\nalias = \"*\"\nexec = [\"{d}/sleeper.sh\"]\ntimeout_secs = 1\n\
             [[hooks]]\nalias = \"SOMEONE\"\nexec = [\"{d}/record.sh\", \"wrong alias\"]\n"
        ),
    );
    let text = "hi $(touch /tmp/netsend-pwned) `id`; rm -rf / | cat > x";
    let from = "E$(id)`id`;|";
    let out = svc.cli(&["send", "--from", from, "HOOKHOST", text]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = svc.wait_inbox(1)[0]["id"].as_i64().unwrap();
    assert!(
        wait_for(&hooks.path().join("argv"), Duration::from_secs(10)),
        "{}",
        svc.log_text()
    );
    let argv = std::fs::read_to_string(hooks.path().join("argv")).unwrap();
    assert_eq!(argv, format!("x{{to}}\n{id}\n"));
    assert_eq!(
        std::fs::read_to_string(hooks.path().join("stdin")).unwrap(),
        text
    );
    assert!(!Path::new("/tmp/netsend-pwned").exists());
    assert_eq!(
        std::fs::read_to_string(hooks.path().join("uid"))
            .unwrap()
            .trim(),
        "65534"
    );
    let env = std::fs::read_to_string(hooks.path().join("env")).unwrap();
    let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    assert!(names.contains(&"PATH"), "{env}");
    assert!(env.contains(&format!("NETSEND_FROM={from}\n")), "{env}");
    assert!(env.contains("NETSEND_TO=HOOKHOST\n"), "{env}");
    assert!(env.contains(&format!("NETSEND_ID={id}\n")), "{env}");
    for name in &names {
        assert!(
            [
                "PATH",
                "PWD",
                "SHLVL",
                "_",
                "OLDPWD",
                "NETSEND_FROM",
                "NETSEND_TO",
                "NETSEND_ID",
                "NETSEND_PEER"
            ]
            .contains(name),
            "leaked {name}: {env}"
        );
    }
    // The sleeper is killed after its 1 s timeout, with its children.
    assert!(wait_for(
        &hooks.path().join("sleeper.pid"),
        Duration::from_secs(5)
    ));
    let pid: i32 = std::fs::read_to_string(hooks.path().join("sleeper.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "hook {pid} still runs"
    );
    assert!(!hooks.path().join("finished").exists());
    let log = strip_ansi(&svc.log_text());
    assert!(log.contains("killed after 1s"), "{log}");
    assert!(log.contains("event=\"receive\""), "{log}");
    assert!(log.contains("transport=\"session\""), "{log}");
    assert_eq!(
        std::fs::read_to_string(hooks.path().join("argv")).unwrap(),
        argv
    );
}

#[test]
fn a_sender_name_never_becomes_a_hook_option() {
    if !require(is_root(), "root (the service drops to nobody to run hooks)") {
        return;
    }
    let hooks = hook_dir();
    let d = hooks.path().display();
    let svc = Service::start(
        "OPTHOST",
        "user = \"nobody\"",
        &format!(
            "[[hooks]]\nalias = \"*\"\nexec = [\"{d}/record.sh\", \"{{id}}\", \"{{peer}}\"]\n"
        ),
    );
    // Names a getopt program would read as options, sent from a raw socket.
    for (n, from) in ["-f/etc/shadow", "--output=/tmp/x"].into_iter().enumerate() {
        let _ = std::fs::remove_file(hooks.path().join("argv"));
        let mut s = std::net::TcpStream::connect(svc.session).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(crate::local::send_as(&mut s, from, "OPTHOST", "hi"), 0);
        let peer = s.local_addr().unwrap().to_string();
        let id = svc.wait_inbox(n + 1)[n]["id"].as_i64().unwrap();
        assert!(wait_for(
            &hooks.path().join("argv"),
            Duration::from_secs(10)
        ));
        let argv = std::fs::read_to_string(hooks.path().join("argv")).unwrap();
        assert_eq!(argv, format!("{id}\n{peer}\n"));
        let env = std::fs::read_to_string(hooks.path().join("env")).unwrap();
        for var in [
            format!("NETSEND_FROM={from}"),
            "NETSEND_TO=OPTHOST".into(),
            format!("NETSEND_ID={id}"),
            format!("NETSEND_PEER={peer}"),
        ] {
            assert!(env.lines().any(|l| l == var), "{var} missing: {env}");
        }
    }
    // `{from}` and `{to}` as arguments are refused when the file is read.
    let config = std::fs::read_to_string(&svc.config).unwrap();
    for placeholder in ["{from}", "{to}"] {
        let bad = svc.dir.path().join("bad.toml");
        std::fs::write(&bad, config.replace("{peer}", placeholder)).unwrap();
        let out = std::process::Command::new(crate::harness::netsend_bin())
            .arg("--config")
            .arg(&bad)
            .arg("name")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("NETSEND_"), "{}", stderr(&out));
    }
}

/// The log without terminal colour sequences (ESC [ ... m).
fn strip_ansi(log: &str) -> String {
    let mut out = String::new();
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One recorded HTTP request: request line, headers (lower-case names), body.
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A real HTTP server on loopback that answers 200 and records each request.
fn http_server() -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (n, v) = h.split_once(':').unwrap();
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
            let len: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send(Request {
                line: line.trim_end().to_owned(),
                headers,
                body: String::from_utf8(body).unwrap(),
            });
        }
    });
    (address, rx)
}

#[test]
fn http_hooks_post_ntfy_and_gotify_style() {
    let (ntfy, ntfy_requests) = http_server();
    let (gotify, gotify_requests) = http_server();
    let svc = Service::start(
        "WEBHOST",
        "",
        &format!(
            "[[hooks]]\nalias = \"*\"\nurl = \"http://{ntfy}/alerts\"\n\
             [[hooks]]\nalias = \"WEBHOST\"\nurl = \"http://{gotify}/message?token=T0KEN\"\nformat = \"gotify\"\n"
        ),
    );
    let text = "Backup finished \"ok\"\nsecond line";
    let out = svc.cli(&["send", "--from", "BACKUP", "WEBHOST", text]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = ntfy_requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(r.line, "POST /alerts HTTP/1.1");
    assert_eq!(r.header("title"), Some("Message from BACKUP to WEBHOST"));
    assert_eq!(r.body, text);
    let r = gotify_requests
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(r.line, "POST /message?token=T0KEN HTTP/1.1");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(json["title"], "Message from BACKUP to WEBHOST");
    assert_eq!(json["message"], text);
    assert_eq!(json["priority"], 5);
    // A hook that fails (nothing listens) does not affect delivery.
    drop(svc);
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let svc = Service::start(
        "WEBHOST",
        "",
        &format!("[[hooks]]\nalias = \"*\"\nurl = \"http://{dead}/x\"\ntimeout_secs = 2\n"),
    );
    let out = svc.cli(&["send", "WEBHOST", "still", "delivered"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(svc.wait_inbox(1).len(), 1);
}

/// A free TCP port on loopback.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn texts(svc: &Service) -> Vec<String> {
    svc.inbox()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn forwarded_alias_goes_on_once_and_never_loops() {
    let (port_a, port_b) = (free_port(), free_port());
    let statics = |name: &str, port: u16| {
        format!("[[static_names]]\nname = \"{name}\"\naddress = \"127.0.0.1:{port}\"\n")
    };
    let a = Service::start_in(
        None,
        "FWDA",
        "127.0.0.1",
        port_a,
        0,
        "",
        &statics("FWDB", port_b),
    );
    let b = Service::start_in(
        None,
        "FWDB",
        "127.0.0.1",
        port_b,
        0,
        "",
        &statics("FWDA", port_a),
    );
    for svc in [&a, &b] {
        let out = svc.cli(&["name", "ALICE", "/add"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Forwards to ourselves are refused.
    for own in ["FWDA", "alice", "127.0.0.1"] {
        let out = a.cli(&["name", "ALICE", &format!("/forward:{own}")]);
        assert_eq!(out.status.code(), Some(2), "{own}");
        assert!(stderr(&out).contains("(87)"), "{}", stderr(&out));
    }
    let out = a.cli(&["name", "NOBODY", "/forward:FWDB"]);
    assert!(stderr(&out).contains("(2285)"), "{}", stderr(&out));
    let out = a.cli(&["name", "alice", "/FORWARD:FWDB"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&a.cli(&["name"])).contains("forwarded to FWDB"));
    // The loop attempt: B forwards ALICE back to A.
    let out = b.cli(&["name", "ALICE", "/forward:FWDA"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = a.cli(&["send", "ALICE", "hello", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(b.wait_inbox(1).len(), 1);
    let out = b.cli(&["send", "ALICE", "from", "b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(a.wait_inbox(2).len(), 2);
    assert_eq!(b.wait_inbox(2).len(), 2);
    // Nothing more arrives: each copy went one hop only.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(texts(&a), ["hello alice", "(forwarded by FWDB)\nfrom b"]);
    assert_eq!(texts(&b), ["(forwarded by FWDA)\nhello alice", "from b"]);
    let forwarded = &b.inbox()[0];
    assert_eq!(forwarded["to"], "ALICE");
    assert_eq!(forwarded["from"], a.inbox()[0]["from"]);
    // Cancelled: the next message stays at A.
    let out = a.cli(&["name", "ALICE", "/cancel"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&a.cli(&["name"])).contains("forwarded to"));
    let out = a.cli(&["send", "ALICE", "stays"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(a.wait_inbox(3).len(), 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.inbox().len(), 2);
}
