//! Several netsend services on a LAN of network namespaces (192.0.2.0/24).

use crate::harness::{have, is_root, lans_available, require, stderr, Lan, Service};

#[test]
fn three_hosts_deliver_to_each_other_by_broadcast_name_query() {
    if !lans_available() {
        return;
    }
    let lan = Lan::new(
        "l3",
        &[
            ("a", "192.0.2.31"),
            ("b", "192.0.2.32"),
            ("c", "192.0.2.33"),
            ("d", "192.0.2.34"),
        ],
    );
    // Host d is in another workgroup.
    let other = Service::start_in(
        Some(&lan.ns("d")),
        "HOSTD",
        "192.0.2.34",
        139,
        137,
        "workgroup = \"OTHERDOM\"",
        "",
    );
    let hosts = [
        ("a", "HOSTA", "192.0.2.31"),
        ("b", "HOSTB", "192.0.2.32"),
        ("c", "HOSTC", "192.0.2.33"),
    ];
    let services: Vec<Service> = hosts
        .iter()
        .map(|(h, name, addr)| Service::start_in(Some(&lan.ns(h)), name, addr, 139, 137, "", ""))
        .collect();
    for (i, svc) in services.iter().enumerate() {
        let (_, _, _) = hosts[i];
        let next = hosts[(i + 1) % 3].1;
        let out = svc.cli(&["send", next, "hello", "from", hosts[i].1]);
        assert!(
            out.status.success(),
            "{} -> {next}: {}",
            hosts[i].1,
            stderr(&out)
        );
    }
    for (i, svc) in services.iter().enumerate() {
        let inbox = svc.wait_inbox(1);
        let prev = hosts[(i + 2) % 3];
        assert_eq!(inbox.len(), 1, "{}: {inbox:?}", hosts[i].1);
        assert_eq!(inbox[0]["text"], format!("hello from {}", prev.1));
        assert!(inbox[0]["source"].as_str().unwrap().starts_with(prev.2));
    }
    // NET SEND * reaches every other host's inbox, marked as a broadcast.
    let out = services[0].cli(&["send", "*", "This server will shut down in 5 minutes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (i, svc) in services.iter().enumerate().skip(1) {
        let inbox = svc.wait_inbox(2);
        assert_eq!(inbox.len(), 2, "{}: {inbox:?}", hosts[i].1);
        assert_eq!(inbox[1]["text"], "This server will shut down in 5 minutes");
        assert_eq!(inbox[1]["broadcast"], true);
        assert_eq!(inbox[1]["transport"], "mailslot");
        assert_eq!(inbox[1]["from"], "root");
    }
    // `*` stayed in our workgroup; /DOMAIN:OTHERDOM reaches only the other
    // workgroup's host; an over-long broadcast is refused, not cut.
    let out = services[0].cli(&["send", "/domain:OTHERDOM", "hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let theirs = other.wait_inbox(1);
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["text"], "hi");
    let long = "x".repeat(500);
    let out = services[0].cli(&["send", "*", &long]);
    assert!(
        stderr(&out).contains("NERR_TruncatedBroadcast (2289)"),
        "{}",
        stderr(&out)
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    for svc in &services[1..] {
        assert_eq!(svc.inbox().len(), 2);
    }
    // A text too long for one datagram goes as several parts with --split.
    let long: String = (0..600)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let out = services[0].cli(&["send", "--split", "*", &long]);
    assert!(out.status.success(), "{}", stderr(&out));
    let inbox = services[1].wait_inbox(4);
    assert_eq!(inbox.len(), 4, "{inbox:?}");
    let joined = format!(
        "{}{}",
        inbox[2]["text"].as_str().unwrap(),
        inbox[3]["text"].as_str().unwrap()
    );
    assert_eq!(joined, long);
    // Ordinary users may not broadcast, and a claimed sender name is marked.
    if have("runuser") {
        let out = services[0].cli_as("nobody", &["send", "*", "spam"]);
        assert!(
            stderr(&out).contains("ERROR_ACCESS_DENIED (5)"),
            "{}",
            stderr(&out)
        );
        let out = services[0].cli_as(
            "nobody",
            &["send", "--from", "boss", "HOSTB", "raise for everyone"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let inbox = services[1].wait_inbox(5);
        assert_eq!(inbox[4]["from"], "nobody");
        assert_eq!(
            inbox[4]["text"],
            "(claims to be boss, sent by uid 65534)\nraise for everyone"
        );
    }
    // A name nobody holds is not found on the LAN either.
    let out = services[0].cli(&["send", "NOBODY", "hi"]);
    assert!(stderr(&out).contains("(2273)"), "{}", stderr(&out));
}

#[test]
fn service_drops_root_after_binding_privileged_ports() {
    if !lans_available() {
        return;
    }
    let lan = Lan::new("pd", &[("a", "192.0.2.35")]);
    let svc = Service::start_in(
        Some(&lan.ns("a")),
        "DROPPER",
        "192.0.2.35",
        139,
        137,
        "user = \"nobody\"",
        "",
    );
    let out = svc.cli(&["send", "DROPPER", "as", "nobody"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(svc.wait_inbox(1)[0]["text"], "as nobody");
    let status: String = crate::harness::stdout(&svc.cli(&["messenger", "status"]));
    let pid = status
        .split("pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .to_owned();
    let proc_status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = proc_status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid_line}"
    );
    let cap_line = proc_status
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .unwrap();
    assert!(cap_line.ends_with("0000000000000000"), "{cap_line}");
}

#[test]
fn a_name_another_host_owns_is_refused_and_stopped_hosts_release_theirs() {
    if !lans_available() {
        return;
    }
    let lan = Lan::new("cf", &[("a", "192.0.2.51"), ("b", "192.0.2.52")]);
    let a = Service::start_in(Some(&lan.ns("a")), "OWNERA", "192.0.2.51", 139, 137, "", "");
    let b = Service::start_in(Some(&lan.ns("b")), "OWNERB", "192.0.2.52", 139, 137, "", "");
    let out = a.cli(&["name", "helpdesk", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(crate::harness::stdout(&a.cli(&["name"])).contains("registered (broadcast)"));
    // B may not take A's alias, nor A's computer name.
    for taken in ["HELPDESK", "OWNERA"] {
        let out = b.cli(&["name", taken, "/add"]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("NERR_DuplicateName (2297)") && err.contains("192.0.2.51"),
            "{err}"
        );
        assert!(!crate::harness::stdout(&b.cli(&["name"])).contains(taken) || taken == "OWNERA");
    }
    // A keeps it: B's message to HELPDESK reaches A.
    let out = b.cli(&["send", "helpdesk", "printer", "jam"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(a.wait_inbox(1)[0]["to"], "HELPDESK");
    // A stops and releases its names: B no longer finds them.
    assert!(a.stop().success());
    let out = b.cli(&["send", "helpdesk", "anyone?"]);
    assert!(stderr(&out).contains("(2273)"), "{}", stderr(&out));
    // And now B may take the alias.
    let out = b.cli(&["name", "helpdesk", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_relay_carries_domain_broadcasts_into_another_subnet() {
    if !lans_available() {
        return;
    }
    // a and d share one subnet; b (the relay) and c another, behind a router.
    let lan = Lan::routed(
        "rl",
        &[("a", "192.0.2.10"), ("d", "192.0.2.11")],
        &[("b", "192.0.2.130"), ("c", "192.0.2.131")],
    );
    let start = |host: &str, name: &str, addr: &str, extra: &str| {
        Service::start_in(Some(&lan.ns(host)), name, addr, 139, 137, "", extra)
    };
    let a = start("a", "HOSTA", "192.0.2.10", "relays = [\"192.0.2.130\"]");
    let d = start("d", "HOSTD", "192.0.2.11", "relays = [\"192.0.2.130\"]");
    // b relays for a only.
    let b = start("b", "HOSTB", "192.0.2.130", "relay_from = [\"192.0.2.10\"]");
    let c = start("c", "HOSTC", "192.0.2.131", "");
    // d may not use b as a relay: b gets d's broadcast (sent to it directly)
    // but does not pass it on.
    let out = d.cli(&["send", "*", "stays at home"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // With one, it reaches the other subnet too: the relay stores it and
    // re-broadcasts it there, once.
    let out = a.cli(&["send", "*", "across the router"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = c.wait_inbox(1);
    let _ = a.wait_inbox(2);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let texts = |svc: &Service| -> Vec<String> {
        let mut t: Vec<String> = svc
            .inbox()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect();
        t.sort();
        t
    };
    assert_eq!(texts(&a), ["across the router", "stays at home"]);
    assert_eq!(texts(&d), ["across the router", "stays at home"]);
    assert_eq!(texts(&b), ["across the router", "stays at home"]);
    assert_eq!(texts(&c), ["across the router"]);
    let relayed = &c.inbox()[0];
    assert_eq!(relayed["broadcast"], true);
    assert_eq!(relayed["from"], "root");
}

#[test]
fn the_sender_sees_when_its_message_was_read() {
    if !lans_available() {
        return;
    }
    let lan = Lan::new("rc", &[("a", "192.0.2.61"), ("b", "192.0.2.62")]);
    let a = Service::start_in(Some(&lan.ns("a")), "HOSTRA", "192.0.2.61", 139, 137, "", "");
    let b = Service::start_in(Some(&lan.ns("b")), "HOSTRB", "192.0.2.62", 139, 137, "", "");
    let out = a.cli(&["send", "HOSTRB", "did you get this?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = crate::harness::receipt_id(&out);
    let status = crate::harness::stdout(&a.cli(&["status", &id]));
    assert!(status.contains("shown not yet, read not yet"), "{status}");
    // The recipient reads it: its host sends the receipt back.
    let stored = b.wait_inbox(1);
    let read = b.cli(&[
        "inbox",
        "read",
        &stored[0]["id"].as_i64().unwrap().to_string(),
    ]);
    assert!(read.status.success(), "{}", stderr(&read));
    let mut status = String::new();
    for _ in 0..50 {
        status = crate::harness::stdout(&a.cli(&["status", &id]));
        if status.contains(", read 20") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        status.contains(", read 20") && !status.contains("shown not yet"),
        "{status}"
    );
    // Only the sender may ask.
    if have("runuser") {
        let other = a.cli_as("nobody", &["status", &id]);
        assert!(!other.status.success());
    }
}

#[test]
fn users_reaches_each_person_once_at_the_machine_they_sit_at() {
    if !require(
        is_root() && have("ip") && have("useradd") && have("runuser"),
        "root, iproute2, useradd and runuser (namespaces and real test accounts)",
    ) {
        return;
    }
    // Real accounts: nsulocal is logged in at the server twice; nsuatb and
    // nsuatc are logged in to the server remotely (twice from b, once from c)
    // and sit at b and c, whose messengers hold their names.
    let _accounts = crate::harness::TestUsers::create(&["nsulocal", "nsuatb", "nsuatc"], None);
    let lan = Lan::new(
        "us",
        &[
            ("a", "192.0.2.71"),
            ("b", "192.0.2.72"),
            ("c", "192.0.2.73"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let me = std::process::id();
    let utmp = |host: &str, records: &[(&str, &str, &str)]| {
        let path = dir.path().join(format!("utmp-{host}"));
        let bytes: Vec<u8> = records
            .iter()
            .flat_map(|(line, user, from)| crate::local::utmp_record(me, line, user, from))
            .collect();
        std::fs::write(&path, bytes).unwrap();
        format!("sessions = \"utmp\"\nutmp_path = \"{}\"", path.display())
    };
    let server_top = utmp(
        "a",
        &[
            ("pts/1", "nsulocal", ""),
            ("pts/2", "nsulocal", ""),
            ("pts/3", "nsuatb", "192.0.2.72"),
            ("pts/4", "nsuatb", "192.0.2.72"),
            ("pts/5", "nsuatc", "192.0.2.73"),
        ],
    );
    let b_top = utmp("b", &[("pts/1", "nsuatb", "")]);
    let c_top = utmp("c", &[("pts/1", "nsuatc", "")]);
    let start = |host: &str, name: &str, address: &str, top: &str| {
        Service::start_in(Some(&lan.ns(host)), name, address, 139, 137, top, "")
    };
    let server = start("a", "USRVA", "192.0.2.71", &server_top);
    let at_b = start("b", "USRVB", "192.0.2.72", &b_top);
    let at_c = start("c", "USRVC", "192.0.2.73", &c_top);
    for (svc, alias) in [(&server, "NSULOCAL"), (&at_b, "NSUATB"), (&at_c, "NSUATC")] {
        let mut listed = String::new();
        for _ in 0..100 {
            listed = crate::harness::stdout(&svc.cli(&["name"]));
            if listed.contains(alias) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(listed.contains(alias), "{listed}");
    }
    // An ordinary user may not send to /USERS: refused, nothing delivered.
    let out = server.cli_as("nsulocal", &["send", "/USERS", "spam"]);
    assert!(
        stderr(&out).contains("ERROR_ACCESS_DENIED (5)"),
        "{}",
        stderr(&out)
    );
    let text = "This server will shut down in 5 minutes";
    let out = server.cli(&["send", "/USERS", text]);
    let said = crate::harness::stdout(&out);
    assert!(out.status.success(), "{said}{}", stderr(&out));
    for who in ["nsulocal", "nsuatb (192.0.2.72", "nsuatc (192.0.2.73"] {
        assert!(said.contains(&format!("sent to {who}")), "{said}");
    }
    // One copy per person, in the inbox of the host they sit at, theirs to read.
    for (svc, alias, user) in [
        (&server, "NSULOCAL", "nsulocal"),
        (&at_b, "NSUATB", "nsuatb"),
        (&at_c, "NSUATC", "nsuatc"),
    ] {
        svc.wait_inbox(1);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let inbox = svc.inbox();
        assert_eq!(inbox.len(), 1, "{alias}: {inbox:?}");
        assert_eq!(inbox[0]["to"], alias);
        assert_eq!(inbox[0]["recipient_user"], user);
        assert_eq!(inbox[0]["from"], "root");
        assert_eq!(inbox[0]["text"], text);
    }
}
