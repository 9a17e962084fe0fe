//! Who may hold a name: another Unix user cannot take a person's login
//! name, and a spoofed packet from another host cannot take our names off
//! the network.

use std::time::Duration;

use netsend_wire::nbns::{NbEntry, NodeType, Packet};
use netsend_wire::NetbiosName;

use crate::harness::{have, is_root, require, stderr, stdout, Lan, Service, TestUsers};
use crate::samba::{client_conf, start_nmbd};

/// `netsend name` as `user` (root when `None`): its output and its notices.
fn names_as(svc: &Service, user: Option<&str>) -> (String, String) {
    let out = match user {
        Some(u) => svc.cli_as(u, &["name"]),
        None => svc.cli(&["name"]),
    };
    assert!(out.status.success(), "{}", stderr(&out));
    (stdout(&out), stderr(&out))
}

/// The inbox `user` sees, as JSON values.
fn inbox_as(svc: &Service, user: &str) -> Vec<serde_json::Value> {
    let out = svc.cli_as(user, &["inbox", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn another_user_cannot_take_a_persons_login_name() {
    if !require(
        is_root() && have("useradd") && have("runuser"),
        "root, useradd and runuser (real test accounts)",
    ) {
        return;
    }
    let _accounts = TestUsers::create(&["nsqbob", "nsqmal"], None);
    let dir = tempfile::tempdir().unwrap();
    let utmp = dir.path().join("utmp");
    std::fs::write(&utmp, b"").unwrap();
    let top = format!("utmp_path = \"{}\"", utmp.display());
    let svc = Service::start("HOSTSQ", &top, "[limits]\nmax_aliases_per_user = 2\n");
    // Bob is logged out: mallory may not add his login name, in any case,
    // nor root's; nothing is added.
    for name in ["nsqbob", "NSQBOB", "NsqBob", "root"] {
        let out = svc.cli_as("nsqmal", &["name", name, "/add"]);
        let err = stderr(&out);
        assert!(
            !out.status.success() && err.contains("ERROR_ACCESS_DENIED (5)"),
            "{name}: {err}"
        );
        assert!(err.contains("only root may add it"), "{err}");
    }
    let (listed, _) = names_as(&svc, None);
    assert!(!listed.contains("NSQBOB"), "{listed}");
    // Her own login name and names of no account are hers to add; root
    // may add any.
    for name in ["nsqmal", "nsqlate"] {
        let out = svc.cli_as("nsqmal", &["name", name, "/add"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
    // The per-user cap (2 here): a third alias is refused, and others may
    // still add theirs.
    let out = svc.cli_as("nsqmal", &["name", "nsqfill", "/add"]);
    assert!(
        stderr(&out).contains("NERR_TooManyNames (2277)")
            && stderr(&out).contains("max_aliases_per_user"),
        "{}",
        stderr(&out)
    );
    let out = svc.cli_as("nsqbob", &["name", "nsqfill", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = svc.cli(&["name", "nsqroot1", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The account nsqlate is created after mallory added its name: until
    // its owner logs in, messages to NSQLATE are hers.
    let _late = TestUsers::create(&["nsqlate"], None);
    let out = svc.cli(&["send", "NSQLATE", "before the login"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = svc.wait_inbox(1);
    assert_eq!(stored[0]["recipient_user"], "nsqmal", "{stored:?}");
    // nsqlate logs in: the account's owner comes first.
    std::fs::write(
        &utmp,
        crate::local::utmp_record(std::process::id(), "pts/7", "nsqlate", ""),
    )
    .unwrap();
    let mut listed = String::new();
    for _ in 0..200 {
        listed = names_as(&svc, None).0;
        if listed
            .lines()
            .any(|l| l.starts_with("NSQLATE") && l.contains("nsqlate"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = listed
        .lines()
        .find(|l| l.starts_with("NSQLATE"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.contains("user") && line.contains("nsqlate") && !line.contains("nsqmal"),
        "{listed}"
    );
    let out = svc.cli(&["send", "NSQLATE", "for the owner"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = svc.wait_inbox(2);
    assert_eq!(stored[1]["recipient_user"], "nsqlate", "{stored:?}");
    let theirs = inbox_as(&svc, "nsqlate");
    assert!(
        theirs.iter().any(|m| m["text"] == "for the owner"),
        "{theirs:?}"
    );
    let hers = inbox_as(&svc, "nsqmal");
    assert!(
        !hers.iter().any(|m| m["text"] == "for the owner"),
        "{hers:?}"
    );
    // Mallory is told at her next `netsend name`, once; the service logged it.
    let (_, notes) = names_as(&svc, Some("nsqmal"));
    assert!(
        notes.contains("your alias NSQLATE was removed") && notes.contains("nsqlate logged in"),
        "{notes}"
    );
    assert!(!names_as(&svc, Some("nsqmal")).1.contains("NSQLATE"));
    let mut svc = svc;
    assert!(
        svc.log_text().contains("went to that account at its login"),
        "no log line"
    );
}

/// Sends each packet from host `from` (UDP port 137) to every address in `to`.
fn send_from(lan: &Lan, from: &str, packets: &[Packet], to: &[&str]) {
    let hex: Vec<String> = packets
        .iter()
        .map(|p| {
            p.to_bytes()
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect();
    let script = "import socket,sys\n\
                  s=socket.socket(2,2); s.setsockopt(1,6,1); s.bind(('',137))\n\
                  for p in sys.argv[2:]:\n\
                  \x20   for a in sys.argv[1].split(','): s.sendto(bytes.fromhex(p),(a,137))\n";
    let mut args = vec!["python3", "-c", script];
    let joined = to.join(",");
    args.push(&joined);
    args.extend(hex.iter().map(String::as_str));
    let out = lan.exec(from, &args, None);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The line of `netsend name` for `alias`, once `pred` holds for it
/// (bounded wait); the last line seen otherwise.
fn name_line(svc: &Service, alias: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut line = String::new();
    for _ in 0..200 {
        let listed = names_as(svc, None).0;
        line = listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(alias))
            .unwrap_or_default()
            .to_owned();
        if pred(&line) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    line
}

/// What `nmblookup` on host `host` finds for `name` (e.g. `HOST#03`) by
/// broadcast.
fn lookup(lan: &Lan, host: &str, conf: &str, name: &str) -> String {
    stdout(&lan.exec(host, &["nmblookup", "-s", conf, name], None))
}

/// Waits (bounded) until `nmblookup` finds `name` at `address`.
fn lookup_finds(lan: &Lan, host: &str, conf: &str, name: &str, address: &str) -> String {
    let suffix = name.replace('#', "<") + ">";
    let wanted = format!("{address} {suffix}");
    let mut found = String::new();
    for _ in 0..60 {
        found = lookup(lan, host, conf, name);
        if found.contains(&wanted) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    found
}

fn lan_tools() -> bool {
    require(
        is_root() && have("ip") && have("nmblookup") && have("python3"),
        "root, iproute2, Samba's nmblookup and python3",
    )
}

/// [`lan_tools`] and Samba's nmbd; a directory for nmbd's files.
fn nmbd_lan_tools() -> Option<tempfile::TempDir> {
    (lan_tools() && require(have("nmbd"), "Samba's nmbd")).then(|| tempfile::tempdir().unwrap())
}

#[test]
fn a_spoofed_conflict_or_release_demand_does_not_take_our_names() {
    if !lan_tools() {
        return;
    }
    let lan = Lan::new(
        "sp",
        &[
            ("a", "192.0.2.81"),
            ("m", "192.0.2.82"),
            ("c", "192.0.2.83"),
        ],
    );
    let a = Service::start_in(
        Some(&lan.ns("a")),
        "NSVICTIM",
        "192.0.2.81",
        139,
        137,
        "",
        "",
    );
    let line = name_line(&a, "NSVICTIM", |l| l.contains("registered (broadcast)"));
    assert!(line.contains("registered (broadcast)"), "{line}");
    let dir = tempfile::tempdir().unwrap();
    let conf = client_conf(
        dir.path(),
        "interfaces = eth0\n   bind interfaces only = yes",
    );
    let found = lookup_finds(&lan, "c", &conf, "NSVICTIM#03", "192.0.2.81");
    assert!(found.contains("192.0.2.81 NSVICTIM<03>"), "{found}");
    // Host m demands our names: conflict demands (any transaction id) and a
    // release demand carrying our address, to us and to the broadcast address.
    let victim = |suffix| NetbiosName::new("NSVICTIM", suffix).unwrap();
    let ours = NbEntry::new(false, NodeType::B, "192.0.2.81".parse().unwrap());
    let packets = [
        Packet::conflict_demand(0x1234, victim(3).into(), 0),
        Packet::conflict_demand(0x4321, victim(0).into(), 0),
        Packet::release_request(0x7777, victim(3), ours),
    ];
    send_from(&lan, "m", &packets, &["192.0.2.81", "192.0.2.255"]);
    // The check (three queries, 250 ms apart) finds no other host.
    let line = name_line(&a, "NSVICTIM", |l| l.contains("ignored"));
    assert!(
        line.contains("registered (broadcast)")
            && line.contains("unverified demand")
            && line.contains("from 192.0.2.82:137"),
        "{line}"
    );
    // Samba's resolver still finds both names at our address.
    for name in ["NSVICTIM#03", "NSVICTIM#00"] {
        let found = lookup(&lan, "c", &conf, name);
        assert!(found.contains("192.0.2.81 NSVICTIM<"), "{name}: {found}");
    }
    let status = stdout(&a.cli(&["messenger", "status"]));
    assert!(status.contains("unverified_name_demand"), "{status}");
    let mut a = a;
    assert!(a.log_text().contains("name demand ignored"), "no log line");
}

/// netsend on `a` named `name`, where nmbd on `b` has held that name since
/// before, so it is in conflict; `retry_secs` is its first retry pause.
/// Returns the LAN, the service and the client smb.conf (in `dir`).
fn conflicting(
    tag: &str,
    name: &str,
    retry_secs: u64,
    dir: &std::path::Path,
) -> (Lan, Service, String) {
    let lan = Lan::new(
        tag,
        &[
            ("a", "192.0.2.85"),
            ("b", "192.0.2.86"),
            ("c", "192.0.2.87"),
        ],
    );
    start_nmbd(&lan, "b", dir, name, false);
    let conf = client_conf(dir, "interfaces = eth0\n   bind interfaces only = yes");
    let wanted = format!("{name}#03");
    let found = lookup_finds(&lan, "c", &conf, &wanted, "192.0.2.86");
    assert!(found.contains("192.0.2.86"), "nmbd never answered: {found}");
    let names = format!(
        "[names]\nconflict_retry_secs = {retry_secs}\nconflict_max_retry_secs = {retry_secs}\n"
    );
    let a = Service::start_in(Some(&lan.ns("a")), name, "192.0.2.85", 139, 137, "", &names);
    let line = name_line(&a, name, |l| l.contains("conflict (owned by 192.0.2.86)"));
    assert!(
        line.contains("conflict (owned by 192.0.2.86), tried again in"),
        "{line}"
    );
    // We no longer answer for it: Samba's resolver finds only nmbd.
    let found = lookup(&lan, "c", &conf, &wanted);
    assert!(
        found.contains("192.0.2.86") && !found.contains("192.0.2.85"),
        "{found}"
    );
    (lan, a, conf)
}

/// Kills every process on host `host` (nmbd leaves without a release).
fn kill_all(lan: &Lan, host: &str) {
    let pids = std::process::Command::new("ip")
        .args(["netns", "pids", &lan.ns(host)])
        .output()
        .unwrap();
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
}

#[test]
fn a_name_another_host_really_holds_is_tried_again_on_a_schedule() {
    let Some(dir) = nmbd_lan_tools() else {
        return;
    };
    let (lan, a, conf) = conflicting("rs", "NSCLASH", 2, dir.path());
    // The owner goes away without releasing the name: our next try gets it.
    kill_all(&lan, "b");
    let line = name_line(&a, "NSCLASH", |l| l.contains("registered (broadcast)"));
    assert!(
        line.contains("registered (broadcast); was held by 192.0.2.86"),
        "{line}"
    );
    let found = lookup_finds(&lan, "c", &conf, "NSCLASH#03", "192.0.2.85");
    assert!(found.contains("192.0.2.85 NSCLASH<03>"), "{found}");
}

#[test]
fn a_name_another_host_really_holds_is_tried_again_when_it_releases_it() {
    let Some(dir) = nmbd_lan_tools() else {
        return;
    };
    // Retries are 10 minutes apart: only the release can bring it back soon.
    let (lan, a, conf) = conflicting("rr", "NSFREED", 600, dir.path());
    kill_all(&lan, "b");
    let owner = NbEntry::new(false, NodeType::B, "192.0.2.86".parse().unwrap());
    let released: Vec<Packet> = [0u8, 3]
        .iter()
        .map(|&suffix| {
            Packet::release_request(0x5150, NetbiosName::new("NSFREED", suffix).unwrap(), owner)
        })
        .collect();
    send_from(&lan, "b", &released, &["192.0.2.255"]);
    let line = name_line(&a, "NSFREED", |l| l.contains("registered (broadcast)"));
    assert!(line.contains("registered (broadcast)"), "{line}");
    let found = lookup_finds(&lan, "c", &conf, "NSFREED#03", "192.0.2.85");
    assert!(found.contains("192.0.2.85 NSFREED<03>"), "{found}");
}
