//! netsend as the WINS server of a site (`[wins_server] enabled = true`):
//! Samba's nmbd and netsend hosts register with it, nmblookup, smbclient
//! and netsend resolve through it across a router (broadcasts do not cross
//! it, so only the WINS server can answer), a live owner keeps its unique
//! name against a challenger and a gone one loses it, and the table
//! survives a crash of the server.

use std::path::Path;
use std::time::Duration;

use crate::harness::{stderr, stdout, write, Lan, Service};
use crate::samba::samba_available;

/// The WINS server's address (first subnet, with the netsend host).
const WINS: &str = "192.0.2.51";

const SERVER_CONFIG: &str = "[wins_server]\nenabled = true\n";

/// A client smb.conf resolving names only through our WINS server.
fn client_conf(dir: &Path) -> String {
    let d = dir.join("wins-client");
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("smb.conf");
    write(
        &path,
        &format!(
            "[global]\n   workgroup = TESTGROUP\n   netbios name = WINSCLI\n   interfaces = eth0\n   \
             bind interfaces only = yes\n   disable netbios = no\n   wins server = {WINS}\n   \
             name resolve order = wins\n   client min protocol = NT1\n   lock directory = {d}\n   \
             state directory = {d}\n   cache directory = {d}\n   private dir = {d}\n   pid directory = {d}\n   \
             ncalrpc dir = {d}\n   log file = {d}/log.%m\n",
            d = d.display()
        ),
    );
    path.display().to_string()
}

/// Starts nmbd (and smbd, with a message command writing to
/// `DIR/samba-HOST/inbox/msgs.log`, when `smbd`) on `host` as
/// `netbios_name`, a WINS client of ours; returns its smb.conf.
fn start_samba(lan: &Lan, host: &str, dir: &Path, netbios_name: &str, smbd: bool) -> String {
    let d = dir.join(format!("samba-{host}"));
    crate::samba::samba_dirs(&d);
    let d = d.display();
    let conf = format!("{d}/smb.conf");
    write(
        Path::new(&conf),
        &format!(
            "[global]\n   netbios name = {netbios_name}\n   workgroup = TESTGROUP\n   server role = standalone server\n   \
             interfaces = eth0\n   bind interfaces only = yes\n   smb ports = 139 445\n   disable netbios = no\n   \
             server min protocol = NT1\n   \
             message command = /bin/sh -c 'cat %s >> {d}/inbox/msgs.log; rm %s'\n   \
             wins server = {WINS}\n   name resolve order = wins\n   local master = no\n   domain master = no\n   \
             preferred master = no\n   wins support = no\n   dns proxy = no\n   load printers = no\n   printing = bsd\n   \
             printcap name = /dev/null\n   disable spoolss = yes\n   passdb backend = tdbsam:{d}/private/passdb.tdb\n   \
             pid directory = {d}/run\n   lock directory = {d}/lock\n   state directory = {d}/state\n   \
             cache directory = {d}/cache\n   private dir = {d}/private\n   ncalrpc dir = {d}/ncalrpc\n   \
             log file = {d}/log/log.%m\n   log level = 1\n   usershare path =\n"
        ),
    );
    if smbd {
        let mut smbd = std::process::Command::new("ip");
        smbd.args(["netns", "exec", &lan.ns(host), "smbd", "-D", "-s", &conf])
            .env("TMPDIR", format!("{d}/tmp"));
        assert!(smbd.status().unwrap().success());
    }
    let out = lan.exec(host, &["nmbd", "-D", "-s", &conf], None);
    assert!(out.status.success(), "{}", stderr(&out));
    conf
}

/// Stops every process running in `host`'s namespace (the Samba daemons
/// this test started there), by pid.
fn stop_samba(lan: &Lan, host: &str) {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", &lan.ns(host)])
        .output()
        .unwrap();
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    std::thread::sleep(Duration::from_millis(200));
}

/// `nmblookup -U WINS --recursion NAME` from `host`: what our server says.
fn ask_wins(lan: &Lan, host: &str, conf: &str, name: &str) -> String {
    let out = lan.exec(
        host,
        &["nmblookup", "-s", conf, "-U", WINS, "--recursion", name],
        None,
    );
    stdout(&out)
}

/// Waits (bounded, 40 s) until our server answers `name` with `address`.
fn wait_wins(lan: &Lan, host: &str, conf: &str, name: &str, address: &str) -> String {
    let (base, suffix) = name.split_once('#').unwrap();
    let want = format!("{address} {base}<{}>", suffix.to_lowercase());
    let mut said = String::new();
    for _ in 0..80 {
        said = ask_wins(lan, host, conf, name);
        if said.contains(&want) {
            return said;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("the WINS server never answered {name} with {address}: {said}");
}

/// The WINS server's status as JSON.
fn wins_status(svc: &Service) -> serde_json::Value {
    let out = svc.cli(&["messenger", "status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["wins_server"].clone()
}

/// The subnets: 192.0.2.0/25 with the WINS server `w` and the netsend host
/// `n`; 192.0.2.128/25, behind the router, with `hosts`.
fn site(tag: &str, hosts: &[(&str, &str)]) -> Lan {
    Lan::routed(tag, &[("w", WINS), ("n", "192.0.2.52")], hosts)
}

fn netsend(lan: &Lan, host: &str, computer: &str, address: &str, extra: &str) -> Service {
    Service::start_in(Some(&lan.ns(host)), computer, address, 139, 137, "", extra)
}

#[test]
fn samba_and_netsend_hosts_register_with_and_resolve_through_our_wins_server() {
    if !samba_available() {
        return;
    }
    let lan = site(
        "ws",
        &[
            ("s", "192.0.2.140"),
            ("m", "192.0.2.141"),
            ("c", "192.0.2.142"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let conf = client_conf(dir.path());
    let client = format!("[wins]\nserver = \"{WINS}\"\n");
    let mut w = netsend(&lan, "w", "WINSSRV", WINS, SERVER_CONFIG);
    let n = netsend(&lan, "n", "NSHOST", "192.0.2.52", &client);
    let m = netsend(&lan, "m", "MHOST", "192.0.2.141", &client);
    start_samba(&lan, "s", dir.path(), "SMBHOST", true);

    // The server's own name, and every host's names, from across the router.
    wait_wins(&lan, "c", &conf, "WINSSRV#03", WINS);
    wait_wins(&lan, "c", &conf, "NSHOST#03", "192.0.2.52");
    wait_wins(&lan, "c", &conf, "MHOST#03", "192.0.2.141");
    wait_wins(&lan, "c", &conf, "SMBHOST#20", "192.0.2.140");
    wait_wins(&lan, "c", &conf, "SMBHOST#03", "192.0.2.140");
    // The workgroup is a group name every host joined.
    let group = ask_wins(&lan, "c", &conf, "TESTGROUP#00");
    for member in ["192.0.2.52", "192.0.2.140", "192.0.2.141"] {
        assert!(group.contains(member), "{group}");
    }
    assert!(ask_wins(&lan, "c", &conf, "NOBODY#03").contains("failed to find name"));
    let status = wins_status(&w);
    assert!(status["names"].as_u64().unwrap() >= 8, "{status}");
    assert!(status["granted"].as_u64().unwrap() >= 8, "{status}");
    let said = stdout(&w.cli(&["messenger", "status"]));
    assert!(said.contains("wins server:"), "{said}");
    // Node status of the server is answered as before (on its link).
    let status = lan.exec("n", &["nmblookup", "-s", &conf, "-A", WINS], None);
    assert!(stdout(&status).contains("WINSSRV"), "{}", stdout(&status));

    // netsend resolves through it: m reaches n, n reaches smbd.
    let out = m.cli(&["send", "nshost", "from m, found through WINS"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(n.wait_inbox(1)[0]["text"], "from m, found through WINS");
    let out = n.cli(&["send", "smbhost", "to smbd, found through WINS"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let smbd_inbox = dir.path().join("samba-s/inbox/msgs.log");
    let mut got = String::new();
    for _ in 0..50 {
        got = std::fs::read_to_string(&smbd_inbox).unwrap_or_default();
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(got.contains("to smbd, found through WINS"), "{got:?}");
    // smbclient with `name resolve order = wins` reaches the netsend host.
    let out = lan.exec(
        "c",
        &[
            "smbclient",
            "-s",
            &conf,
            "-M",
            "NSHOST",
            "-U",
            "carol",
            "-N",
        ],
        Some(b"from smbclient via WINS\n"),
    );
    assert!(
        !stderr(&out).contains("failed") && !stdout(&out).contains("failed"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let inbox = n.wait_inbox(2);
    assert_eq!(inbox[1]["text"], "from smbclient via WINS\n", "{inbox:?}");

    // A crash of the server loses nothing it acknowledged: the names are
    // answered at once after the restart, before any client refreshes.
    w.crash_and_restart();
    for (name, address) in [
        ("NSHOST#03", "192.0.2.52"),
        ("MHOST#03", "192.0.2.141"),
        ("SMBHOST#20", "192.0.2.140"),
    ] {
        let said = ask_wins(&lan, "c", &conf, name);
        assert!(said.contains(address), "{name} after the restart: {said}");
    }
    let status = wins_status(&w);
    assert!(status["names"].as_u64().unwrap() >= 8, "{status}");
    assert_eq!(status["granted"], 0, "nothing registered again: {status}");
    // A netsend host that stops releases its names at the server.
    assert!(m.stop().success());
    let mut released = false;
    for _ in 0..20 {
        if ask_wins(&lan, "c", &conf, "MHOST#03").contains("failed to find name") {
            released = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(released, "MHOST<03> still answered after its release");
    stop_samba(&lan, "s");
}

#[test]
fn a_live_owner_keeps_its_name_and_a_gone_one_loses_it_to_the_challenger() {
    if !samba_available() {
        return;
    }
    let lan = site("wc", &[("d", "192.0.2.140"), ("c", "192.0.2.142")]);
    let dir = tempfile::tempdir().unwrap();
    let conf = client_conf(dir.path());
    let w = netsend(&lan, "w", "WINSSRV", WINS, SERVER_CONFIG);
    let n = netsend(
        &lan,
        "n",
        "NSHOST",
        "192.0.2.52",
        &format!("[wins]\nserver = \"{WINS}\"\n"),
    );
    wait_wins(&lan, "c", &conf, "NSHOST#03", "192.0.2.52");
    // nmbd behind the router claims the same computer name: only the WINS
    // server stands between them. n answers the challenge and keeps
    // NSHOST<00> and <03>; <20>, which n does not hold, goes to nmbd.
    start_samba(&lan, "d", dir.path(), "NSHOST", false);
    wait_wins(&lan, "c", &conf, "NSHOST#20", "192.0.2.140");
    let mut status = serde_json::Value::Null;
    for _ in 0..40 {
        status = wins_status(&w);
        if status["defended"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(status["defended"].as_u64().unwrap() >= 2, "{status}");
    assert!(status["refused"].as_u64().unwrap() >= 2, "{status}");
    for name in ["NSHOST#03", "NSHOST#00"] {
        let said = ask_wins(&lan, "c", &conf, name);
        assert!(said.contains("192.0.2.52"), "{name}: {said}");
        assert!(!said.contains("192.0.2.140"), "{name}: {said}");
    }
    // n goes away without a release (a crash); nmbd starts again and asks
    // again: the challenge goes unanswered and nmbd gets the names.
    drop(n);
    stop_samba(&lan, "d");
    start_samba(&lan, "d", dir.path(), "NSHOST", false);
    wait_wins(&lan, "c", &conf, "NSHOST#03", "192.0.2.140");
    let said = wait_wins(&lan, "c", &conf, "NSHOST#00", "192.0.2.140");
    assert!(!said.contains("192.0.2.52"), "{said}");
    stop_samba(&lan, "d");
    drop(w);
}
