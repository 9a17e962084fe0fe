//! The no-op responder answers a real `smbclient -M` on port 139 (session
//! request first) in a network namespace of its own. Skipped without root,
//! iproute2 or smbclient, unless `NETSEND_REQUIRE_INTEROP=1` (as CI sets).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A namespace with only loopback up, and the responder in it; both removed on drop.
struct Host {
    ns: String,
    responder: Option<Child>,
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut child) = self.responder.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?}");
}

fn smbclient(host: &Host, conf: &str, text: &str) -> Output {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &host.ns, "smbclient", "-s", conf])
        .args(["-M", "NOOP", "-I", "127.0.0.1", "-U", "alice", "-N"])
        .args(["-n", "TESTCLI"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn smbclient_gets_every_message_through_the_noop_responder() {
    let ok = nix::unistd::geteuid().is_root() && have("ip") && have("smbclient");
    if !ok {
        assert_ne!(
            std::env::var("NETSEND_REQUIRE_INTEROP").as_deref(),
            Ok("1"),
            "required for this test: root, iproute2 and smbclient"
        );
        eprintln!("skipped: needs root, iproute2 and smbclient");
        return;
    }
    let mut host = Host {
        ns: format!("nsbench-t{}", std::process::id()),
        responder: None,
    };
    ip(&["netns", "add", &host.ns]);
    ip(&["-n", &host.ns, "link", "set", "lo", "up"]);
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &host.ns,
            env!("CARGO_BIN_EXE_netsend-bench"),
        ])
        .args(["noop", "--bind", "127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut control = child.stdin.take().unwrap();
    let mut counts = BufReader::new(child.stdout.take().unwrap());
    host.responder = Some(child);
    let mut line = String::new();
    counts.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready 127.0.0.1:139"), "{line}");

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("smb.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\n workgroup = TESTGROUP\n netbios name = TESTCLI\n interfaces = lo\n \
             bind interfaces only = yes\n disable netbios = no\n client min protocol = NT1\n \
             lock directory = {d}\n state directory = {d}\n cache directory = {d}\n \
             private dir = {d}\n pid directory = {d}\n ncalrpc dir = {d}\n log file = {d}/log.%m\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    // One block, then 300 bytes in three 0xD7 blocks.
    for text in ["hello from smbclient\n".to_owned(), "x".repeat(300)] {
        let out = smbclient(&host, &conf, &text);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // smbclient exits 0 even when refused; its errors name an NT status.
        assert!(
            out.status.success() && !stderr.contains("NT_STATUS"),
            "smbclient: {stderr}"
        );
    }
    writeln!(control, "counts").unwrap();
    line.clear();
    counts.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), r#"{"messages":2,"refused":0}"#);
}
