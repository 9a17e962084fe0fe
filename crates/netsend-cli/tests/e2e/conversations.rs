//! Conversations between real services and real peers: `netsend reply` to
//! a Samba sender (by the host's computer name, from nmbd's node status)
//! and to netsend senders, two away hosts that never loop, the sent
//! archive with a netsend recipient's receipts, and `netsend inbox` on a
//! store larger than one screen.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::harness::{
    have, is_root, lans_available, require, stderr, stdout, Lan, Service, TestUsers,
};
use crate::samba::SambaLan;

/// No user logins from the machine running the tests: the only names are
/// the ones a test adds.
const NO_LOGINS: &str = "utmp_path = \"/dev/null\"";

/// Waits (bounded) until `check` holds for the inbox `svc` holds (as
/// root, every message), and returns it.
fn wait_for(svc: &Service, check: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        let inbox = svc.inbox();
        if check(&inbox) {
            return inbox;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    svc.inbox()
}

/// The sent archive as root sees it (every user's).
fn sent_archive(svc: &Service) -> Vec<serde_json::Value> {
    let out = svc.cli(&["sent", "--all", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn id_of(message: &serde_json::Value) -> String {
    message["id"].as_i64().unwrap().to_string()
}

#[test]
fn a_reply_to_smbclient_goes_to_the_senders_computer_name() {
    let Some(lab) = SambaLan::new("cvs") else {
        return;
    };
    let svc = Service::start_in(
        Some(&lab.lan.ns("n")),
        "NSHOST",
        "192.0.2.42",
        139,
        137,
        NO_LOGINS,
        "",
    );
    lab.wait_for_nmbd();
    // smbclient claims a sender name nobody registered.
    let out = lab.smbclient("NSHOST", "someone", "Is the printer fixed?\n");
    let inbox = svc.wait_inbox(1);
    assert_eq!(inbox.len(), 1, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(inbox[0]["from"], "someone");
    // The listing and the message read in full say how to reply.
    assert!(stdout(&svc.cli(&["inbox"])).contains("reply: netsend reply ID TEXT"));
    let read = stdout(&svc.cli(&["inbox", "read", &id_of(&inbox[0])]));
    assert!(
        read.contains(&format!("reply: netsend reply {} TEXT", id_of(&inbox[0]))),
        "{read}"
    );

    let out = svc.cli(&["reply", &id_of(&inbox[0]), "Yes,", "it", "is."]);
    assert!(out.status.success(), "{}", stderr(&out));
    // SOMEONE<03> is nowhere: the reply goes to SMBHOST, found in nmbd's
    // node status of the source address, and stderr says so.
    let note = stderr(&out);
    assert!(
        note.contains("not registered") && note.contains("SMBHOST"),
        "{note}"
    );
    assert!(
        stdout(&out).contains("sent to SMBHOST (192.0.2.41:139)"),
        "{}",
        stdout(&out)
    );
    let mut got = String::new();
    for _ in 0..100 {
        got = lab.smbd_inbox();
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        got, "Yes, it is.",
        "the file smbd handed to its message command"
    );
    // The reply is in the sent archive.
    let sent = sent_archive(&svc);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["to"], "SMBHOST");
    assert_eq!(sent[0]["outcome"], "delivered");
    assert_eq!(sent[0]["text"], "Yes, it is.");
}

/// Two netsend hosts on a namespace LAN, with no logins of their own.
fn two_hosts(tag: &str) -> Option<(Lan, Service, Service)> {
    if !lans_available() {
        return None;
    }
    let lan = Lan::new(tag, &[("a", "192.0.2.71"), ("b", "192.0.2.72")]);
    let a = Service::start_in(
        Some(&lan.ns("a")),
        "CONVA",
        "192.0.2.71",
        139,
        137,
        NO_LOGINS,
        "",
    );
    let b = Service::start_in(
        Some(&lan.ns("b")),
        "CONVB",
        "192.0.2.72",
        139,
        137,
        NO_LOGINS,
        "",
    );
    Some((lan, a, b))
}

#[test]
fn a_reply_to_a_netsend_sender_goes_to_its_name_or_its_computer() {
    let Some((_lan, a, b)) = two_hosts("cvn") else {
        return;
    };
    let out = a.cli(&["name", "CAROL", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // CAROL is registered at the host the message came from: the reply
    // goes to her name, with no note.
    let out = a.cli(&["send", "--from", "CAROL", "CONVB", "lunch?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = b.wait_inbox(1);
    let out = b.cli(&["reply", &id_of(&got[0]), "at noon"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("sent to CAROL (192.0.2.71:139)"),
        "{}",
        stdout(&out)
    );
    let replies = wait_for(&a, |m| m.iter().any(|m| m["text"] == "at noon"));
    let reply = replies.iter().find(|m| m["text"] == "at noon").unwrap();
    assert_eq!(reply["to"], "CAROL");
    assert_eq!(reply["from"], "root");
    // A sender name registered nowhere: the reply goes to CONVA, from
    // netsend's own node status answer.
    let out = a.cli(&["send", "--from", "GHOST", "CONVB", "who am I?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = wait_for(&b, |m| m.len() == 2);
    let out = b.cli(&["reply", &id_of(&got[1]), "nobody"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not registered") && stderr(&out).contains("CONVA"),
        "{}",
        stderr(&out)
    );
    let replies = wait_for(&a, |m| m.iter().any(|m| m["text"] == "nobody"));
    let reply = replies.iter().find(|m| m["text"] == "nobody").unwrap();
    assert_eq!(reply["to"], "CONVA");
    // The thread with CAROL on b: her message, then the reply.
    let thread = stdout(&b.cli(&["inbox", "--with", "carol"]));
    let lines: Vec<&str> = thread
        .lines()
        .filter(|l| l.starts_with(['<', '>']))
        .collect();
    assert_eq!(lines.len(), 2, "{thread}");
    assert!(
        lines[0].starts_with('<') && lines[0].contains("lunch?"),
        "{thread}"
    );
    assert!(
        lines[1].starts_with('>') && lines[1].contains("at noon"),
        "{thread}"
    );
}

#[test]
fn two_away_hosts_answer_once_and_never_loop() {
    if !require(
        is_root() && have("useradd") && have("runuser"),
        "root, useradd and runuser (two real test accounts)",
    ) {
        return;
    }
    let Some((_lan, a, b)) = two_hosts("cva") else {
        return;
    };
    let tag = std::process::id() % 100_000;
    let (ua, ub) = (format!("nca{tag}"), format!("ncb{tag}"));
    let _accounts = TestUsers::create(&[&ua, &ub], None);
    for (svc, user) in [(&a, &ua), (&b, &ub)] {
        let out = svc.cli_as(user, &["name", user, "/add"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = svc.cli_as(user, &["away", "Out", "of", "office", "until", "Monday"]);
        assert!(out.status.success(), "{}", stderr(&out));
        // The away state survives a restart, and `name` and `status` show it.
    }
    let mut a = a;
    a.crash_and_restart();
    for (svc, user) in [(&a, &ua), (&b, &ub)] {
        let names = stdout(&svc.cli_as(user, &["name"]));
        assert!(names.contains("is away since"), "{names}");
        let status = stdout(&svc.cli(&["messenger", "status"]));
        assert!(
            status.contains(&format!("away:          {user} is away")),
            "{status}"
        );
    }
    let automatic = |m: &serde_json::Value| {
        m["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("(automatic answer)\n"))
    };
    // ua writes to ub: b answers once, marked; a never answers that.
    let out = a.cli_as(&ua, &["send", &ub, "Are you there?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let at_a = wait_for(&a, |m| m.iter().any(automatic));
    assert_eq!(at_a.len(), 1, "{at_a:?}");
    assert_eq!(
        at_a[0]["text"],
        "(automatic answer)\nOut of office until Monday"
    );
    assert_eq!(at_a[0]["from"], ub.as_str());
    // ub writes to ua: a answers once; b never answers that.
    let out = b.cli_as(&ub, &["send", &ua, "I am away too"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let at_b = wait_for(&b, |m| m.iter().any(automatic));
    assert_eq!(at_b.len(), 2, "{at_b:?}");
    // A second message within the hour gets no answer.
    let out = a.cli_as(&ua, &["send", &ub, "Still there?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(&b, |m| m.len() == 3);
    std::thread::sleep(Duration::from_secs(3));
    let at_a = a.inbox();
    let at_b = b.inbox();
    assert_eq!(at_a.len(), 2, "{at_a:?}");
    assert_eq!(at_b.len(), 3, "{at_b:?}");
    assert_eq!(at_a.iter().filter(|m| automatic(m)).count(), 1, "{at_a:?}");
    assert_eq!(at_b.iter().filter(|m| automatic(m)).count(), 1, "{at_b:?}");
    // Each automatic answer is in its user's sent archive.
    for (svc, user) in [(&a, &ua), (&b, &ub)] {
        let sent = sent_archive(svc);
        let kinds: Vec<&str> = sent
            .iter()
            .filter(|r| r["owner"] == user.as_str())
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "automatic").count(),
            1,
            "{sent:?}"
        );
    }
    // Back: no more answers.
    let out = b.cli_as(&ub, &["away", "off"]);
    assert!(stdout(&out).contains("You are back"), "{}", stdout(&out));
    assert!(stdout(&b.cli_as(&ub, &["away"])).contains("not away"));
}

/// Sends a control request line to `svc`'s socket and returns the answer.
fn control(svc: &Service, request: &str) -> String {
    let text = std::fs::read_to_string(&svc.config).unwrap();
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("control_socket = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_owned();
    let mut stream = UnixStream::connect(path).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).unwrap();
    answer
}

#[test]
fn the_sent_archive_shows_what_went_where_and_a_netsend_recipients_receipts() {
    let Some((_lan, a, b)) = two_hosts("cvr") else {
        return;
    };
    for text in ["shown only", "read too"] {
        let out = a.cli(&["send", "CONVB", text]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = a.cli(&["send", "--queue", "NOBODYHERE", "later"]);
    assert!(stdout(&out).contains("queued"), "{}", stdout(&out));
    let out = a.cli(&["send", "*", "to everyone"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // On b: the first is shown (as `netsend agent` records it), the second read.
    let got = wait_for(&b, |m| m.len() >= 3);
    let shown = got.iter().find(|m| m["text"] == "shown only").unwrap();
    let answer = control(
        &b,
        &format!("{{\"op\":\"inbox_shown\",\"id\":{}}}", shown["id"]),
    );
    assert!(answer.contains("\"ok\""), "{answer}");
    let read = got.iter().find(|m| m["text"] == "read too").unwrap();
    assert!(b.cli(&["inbox", "read", &id_of(read)]).status.success());
    // a's archive: both directed messages with their receipts, the queued
    // one waiting, the broadcast with its datagrams.
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = sent_archive(&a);
        let receipted = |t: &str, field: &str| {
            sent.iter()
                .any(|r| r["text"] == t && r[field].as_i64().is_some())
        };
        if receipted("shown only", "shown_at") && receipted("read too", "read_at") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let by_text = |t: &str| {
        sent.iter()
            .find(|r| r["text"] == t)
            .unwrap_or_else(|| panic!("{t} not in {sent:?}"))
    };
    let shown = by_text("shown only");
    assert!(shown["shown_at"].as_i64().is_some(), "{sent:?}");
    assert!(shown["read_at"].is_null(), "{sent:?}");
    assert_eq!(shown["outcome"], "delivered");
    assert_eq!(shown["address"], "192.0.2.72");
    let read = by_text("read too");
    assert!(read["read_at"].as_i64().is_some(), "{sent:?}");
    let queued = by_text("later");
    assert_eq!(queued["kind"], "queued");
    assert_eq!(queued["outcome"], "queued");
    let broadcast = by_text("to everyone");
    assert_eq!(broadcast["kind"], "broadcast");
    assert_eq!(broadcast["to"], "TESTGROUP");
    // The listing says the same for people, and --search narrows it.
    let listing = stdout(&a.cli(&["sent"]));
    assert!(listing.contains("[delivered, shown 20"), "{listing}");
    assert!(listing.contains(", read 20"), "{listing}");
    assert!(listing.contains("[via queue, queued]"), "{listing}");
    assert!(listing.contains("[broadcast, "), "{listing}");
    let found = stdout(&a.cli(&["sent", "--search", "READ TOO"]));
    assert_eq!(found.lines().count(), 1, "{found}");
    let newest = stdout(&a.cli(&["sent", "-n", "1"]));
    assert!(
        newest.contains("to everyone") && newest.contains("(1 of 4 shown; netsend sent --all"),
        "{newest}"
    );
}

#[test]
fn the_inbox_shows_the_newest_twenty_and_selects_by_time_and_sender() {
    let svc = Service::start("CONVI", "", "");
    let out = svc.cli(&["name", "PEERX", "/add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for i in 1..=25 {
        let from = if i % 5 == 0 { "PEERX" } else { "PEERY" };
        let out = svc.cli(&["send", "--from", from, "CONVI", &format!("message {i}")]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = svc.cli(&["send", "PEERX", "a note to x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = |args: &[&str]| -> Vec<String> {
        let out = svc.cli(args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().map(String::from).collect()
    };
    let texts = |listing: &[String]| -> Vec<String> {
        listing
            .iter()
            .filter(|l| l.contains(" -> "))
            .map(|l| l.rsplit("  ").next().unwrap().to_owned())
            .collect()
    };
    // The newest 20 of 26, oldest first, and the footer.
    let default = lines(&["inbox"]);
    let shown = texts(&default);
    assert_eq!(shown.len(), 20, "{default:?}");
    assert_eq!(shown[0], "message 7");
    assert_eq!(shown[19], "a note to x");
    assert!(
        default.contains(&"(20 of 26 shown; netsend inbox --all for every message)".to_owned()),
        "{default:?}"
    );
    assert_eq!(
        texts(&lines(&["inbox", "-n", "2"])),
        ["message 25", "a note to x"]
    );
    let all = lines(&["inbox", "--all"]);
    assert_eq!(texts(&all).len(), 26);
    assert!(!all.iter().any(|l| l.contains(" shown; ")), "{all:?}");
    // --json follows the same selection.
    let json: Vec<serde_json::Value> =
        serde_json::from_slice(&svc.cli(&["inbox", "--json", "-n", "3"]).stdout).unwrap();
    assert_eq!(json.len(), 3);
    // --from: the sender's five; --since: a time ago or a date.
    assert_eq!(
        texts(&lines(&["inbox", "--from", "peerx"])),
        [
            "message 5",
            "message 10",
            "message 15",
            "message 20",
            "message 25"
        ]
    );
    assert_eq!(
        texts(&lines(&["inbox", "--since", "1h", "--all"])).len(),
        26
    );
    assert_eq!(
        lines(&["inbox", "--since", "2999-01-01"]),
        ["There are no messages."]
    );
    let out = svc.cli(&["inbox", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("87"), "{}", stderr(&out));
    // --with: both directions in time order.
    let thread = lines(&["inbox", "--with", "PEERX"]);
    let marks: Vec<&str> = thread
        .iter()
        .filter(|l| l.starts_with(['<', '>']))
        .map(|l| &l[..1])
        .collect();
    assert_eq!(marks, ["<", "<", "<", "<", "<", ">"], "{thread:?}");
    assert!(thread
        .iter()
        .any(|l| l.starts_with('>') && l.contains("a note to x")));
}
