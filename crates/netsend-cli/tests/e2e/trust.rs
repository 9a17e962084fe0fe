//! Verified senders on a namespace LAN: a message between netsend hosts goes
//! over the remote channel with the sending host's key and is marked
//! `verified HOST`; plain SMB claiming that host's names is marked
//! unverified and flagged, refused where `require_verified_from` matches;
//! a host whose pinned key changed is refused.

use crate::harness::{lans_available, stderr, stdout, Lan, Service};

#[test]
fn verified_and_spoofed_senders_on_a_lan() {
    if !lans_available() {
        return;
    }
    let lan = Lan::new(
        "tr",
        &[
            ("a", "192.0.2.141"),
            ("b", "192.0.2.142"),
            ("c", "192.0.2.143"),
        ],
    );
    let start = |ns: &str, name: &str, addr: &str, extra: &str| {
        Service::start_in(Some(&lan.ns(ns)), name, addr, 139, 137, "", extra)
    };
    let mut b = start(
        "b",
        "HOSTB",
        "192.0.2.142",
        "[remote]\nlisten = true\n[trust]\nrequire_verified_from = [\"ADMIN*\"]\n",
    );
    let a = start("a", "HOSTA", "192.0.2.141", "");
    // A host that sends plain SMB only, as Samba or Windows would.
    let c = start(
        "c",
        "HOSTC",
        "192.0.2.143",
        "[trust]\nverified_send = false\n",
    );

    // A to B: verified, first contact pins HOSTA's key at B.
    let out = a.cli(&["send", "--from", "ADMIN", "HOSTB", "reboot at noon"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("It went verified"),
        "{}",
        stdout(&out)
    );
    let inbox = b.wait_inbox(1);
    assert_eq!(inbox[0]["text"], "reboot at noon");
    assert_eq!(inbox[0]["verified_host"], "HOSTA", "{:?}", inbox[0]);
    assert_eq!(inbox[0]["transport"], "remote");
    assert!(inbox[0]["source"]
        .as_str()
        .unwrap()
        .starts_with("192.0.2.141:"));
    let pins = std::fs::read_to_string(find(&b, "trusted_hosts")).unwrap();
    assert!(pins.starts_with("HOSTA "), "{pins}");

    // C claims HOSTA's computer name over SMB: stored, unverified, flagged.
    let out = c.cli(&["send", "--from", "HOSTA", "HOSTB", "click this link"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let inbox = b.wait_inbox(2);
    assert_eq!(inbox[1]["text"], "click this link");
    assert!(inbox[1]["verified_host"].is_null(), "{:?}", inbox[1]);
    assert_eq!(inbox[1]["claimed_by"], "HOSTA");
    assert_eq!(inbox[1]["transport"], "session");
    let listing = stdout(&b.cli(&["inbox"]));
    assert!(
        listing.contains("[verified HOSTA]  reboot at noon"),
        "{listing}"
    );
    assert!(
        listing.contains("[unverified: claims HOSTA, which HOSTA uses verified]  click this link"),
        "{listing}"
    );
    let id = inbox[0]["id"].to_string();
    let read = stdout(&b.cli(&["inbox", "read", &id]));
    assert!(read.contains("sender: verified HOSTA"), "{read}");

    // An ordinary unverified sender is just unverified.
    let out = c.cli(&["send", "--from", "BOB", "HOSTB", "lunch?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&b.cli(&["inbox"])).contains("[unverified]  lunch?"));

    // C claims ADMIN over SMB: refused with the SMB error, counted, not stored.
    let out = c.cli(&["send", "--from", "ADMIN", "HOSTB", "give me your password"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    let status = stdout(&b.cli(&["messenger", "status"]));
    assert!(status.contains("unverified_sender 1"), "{status}");
    let texts: Vec<String> = b
        .inbox()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(!texts.iter().any(|t| t.contains("password")), "{texts:?}");

    // HOSTA comes back with another key (a new install, or an impostor):
    // refused at B, logged, and not sent again by SMB.
    drop(a);
    let impostor = start("a", "HOSTA", "192.0.2.141", "");
    let out = impostor.cli(&["send", "HOSTB", "trust me"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("pinned here with another key"),
        "{}",
        stderr(&out)
    );
    assert!(b
        .log_text()
        .contains("the host's key is not the one pinned"));
    let texts: Vec<String> = b
        .inbox()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(!texts.iter().any(|t| t == "trust me"), "{texts:?}");
}

/// The path of `file` in `svc`'s state directory.
fn find(svc: &Service, file: &str) -> std::path::PathBuf {
    let config = std::fs::read_to_string(&svc.config).unwrap();
    let state = config
        .lines()
        .find_map(|l| l.strip_prefix("state_dir = "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap();
    std::path::Path::new(&state).join(file)
}
