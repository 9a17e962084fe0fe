//! Directed messages between sites (issue 18) on the multi-site lab: a
//! message published for site B is delivered at B once, even when the
//! stream holds it twice and after B's gateway restarts; and `netsend send`
//! at site A's gateway for a name held at B arrives at B. Every wait is
//! bounded; no timing is asserted.

use std::time::{Duration, Instant};

use crate::harness::{have, require, stderr, stdout, Service};
use crate::samba::client_conf;
use crate::sites::lab::{
    in_netns, sites_available, NatsConn, Site, SitesLab, NODES, SITE_A, SITE_B,
};

/// The longest a gateway takes to join the cluster, or a name to become
/// known at the other site.
const WAIT: Duration = Duration::from_secs(90);

/// `site`'s gateway, as computer `GW<letter>`.
fn gateway_in(lab: &SitesLab, site: Site) -> Service {
    gateway_with(lab, site, "")
}

/// `site`'s gateway with `extra` configuration appended.
fn gateway_with(lab: &SitesLab, site: Site, extra: &str) -> Service {
    let config = format!(
        "[gateway]\nsite = \"{}\"\n{}\n[queue]\nretry_secs = 2\nmax_retry_secs = 4\n{extra}",
        site.name,
        SitesLab::nats_toml()
    );
    let computer = format!("GW{}", site.letter.to_uppercase());
    let ns = lab.ns(&site.gateway_host());
    Service::start_in(Some(&ns), &computer, site.gateway, 139, 137, "", &config)
}

/// Waits (bounded) until the service's log holds `text` more than `seen`
/// times.
fn wait_log(service: &mut Service, text: &str, seen: usize) {
    let start = Instant::now();
    while service.log_text().matches(text).count() <= seen {
        assert!(
            start.elapsed() < WAIT,
            "no {text:?} in the log:\n{}",
            service.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Publishes `payload` on `subject` from `site`'s gateway host, with a
/// `Nats-Msg-Id` when given, on the first node that acknowledges.
fn publish(lab: &SitesLab, site: Site, subject: &str, msg_id: Option<&str>, payload: Vec<u8>) {
    let (subject, msg_id) = (subject.to_owned(), msg_id.map(str::to_owned));
    in_netns(&lab.ns(&site.gateway_host()), move || {
        let start = Instant::now();
        loop {
            for node in NODES {
                let acked = NatsConn::connect(&format!("{node}:4222"))
                    .and_then(|mut c| c.request(&subject, msg_id.as_deref(), &payload));
                if let Ok(reply) = acked {
                    if String::from_utf8_lossy(&reply).contains("\"seq\"") {
                        return Ok(());
                    }
                }
            }
            if start.elapsed() > WAIT {
                return Err(std::io::Error::other("no node acknowledged the publish"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    })
    .unwrap();
}

#[test]
fn a_message_from_another_site_is_delivered_once_even_when_stored_twice() {
    if !sites_available() {
        return;
    }
    let lab = SitesLab::new("gwonce", &[], &[]);
    let mut south = gateway_in(&lab, SITE_B);
    wait_log(&mut south, "stream and buckets ready", 0);
    let subject = format!("netsend.msg.{}", SITE_B.name);
    let message = netsend_wire::site::SiteMessage {
        msg_id: "A-e2e-1".into(),
        origin: SITE_A.name.into(),
        from: "ALICE".into(),
        to: "GWB".into(),
        text: "greetings from the other site\u{1b}[2J".into(),
        received_ms: 1_764_650_000_000,
        sender: std::net::Ipv4Addr::new(192, 0, 2, 10),
    };
    let payload = message.to_bytes().unwrap();
    publish(&lab, SITE_B, &subject, Some("A-e2e-1"), payload.clone());
    // The same payload again without the dedup header: a second stream
    // message (another sequence), as a redelivery would look.
    publish(&lab, SITE_B, &subject, None, payload.clone());
    let inbox = south.wait_inbox(1);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["from"], "ALICE", "{inbox:?}");
    let text = inbox[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("greetings from the other site"),
        "{text:?}"
    );
    wait_log(&mut south, "already delivered", 0);
    assert_eq!(south.inbox().len(), 1);
    // The record outlives the gateway: after a restart a third copy is
    // still recognised.
    let count = |s: &mut Service, what: &str| s.log_text().matches(what).count();
    let (ready, before) = (
        count(&mut south, "stream and buckets ready"),
        count(&mut south, "already delivered"),
    );
    south.crash_and_restart();
    wait_log(&mut south, "stream and buckets ready", ready);
    publish(&lab, SITE_B, &subject, None, payload);
    wait_log(&mut south, "already delivered", before);
    assert_eq!(south.inbox().len(), 1);
    // A message for a name that is not at this site is given up, and its
    // sender (here site A's gateway itself) is told by a receipt.
    let mut north = gateway_in(&lab, SITE_A);
    wait_log(&mut north, "stream and buckets ready", 0);
    let mut lost = message;
    lost.msg_id = "A-e2e-2".into();
    lost.from = "GWA".into();
    lost.to = "NOBODY".into();
    let lost = lost.to_bytes().unwrap();
    publish(&lab, SITE_B, &subject, Some("A-e2e-2"), lost);
    wait_log(&mut south, "the name is not at this site", 0);
    let start = Instant::now();
    let told = loop {
        let told: Vec<_> = north
            .inbox()
            .into_iter()
            .filter(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("Your message to NOBODY was not delivered at site"))
            })
            .collect();
        if !told.is_empty() || start.elapsed() > WAIT {
            break told;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(told.len(), 1, "{}\n{}", north.log_text(), south.log_text());
    north.stop();
    south.stop();
}

#[test]
fn netsend_send_at_one_gateway_reaches_a_name_held_at_the_other_site() {
    if !sites_available() {
        return;
    }
    if !require(have("smbclient"), "smbclient") {
        return;
    }
    let mut lab = SitesLab::new("gwsend", &[("sa", 20)], &[]);
    // A static entry sending GWB to A's gateway itself (as its proxy
    // answers do): the gateway must not take that address for a name it
    // does not hold, or each message would come back to it forever.
    let to_itself = format!(
        "[[static_names]]\nname = \"GWB\"\naddress = \"{}\"\n",
        SITE_A.gateway
    );
    let mut north = gateway_with(&lab, SITE_A, &to_itself);
    let mut south = gateway_in(&lab, SITE_B);
    wait_log(&mut north, "stream and buckets ready", 0);
    wait_log(&mut south, "stream and buckets ready", 0);
    // Until GWB's name reaches A's directory the send fails (not found).
    let start = Instant::now();
    loop {
        let out = north.cli(&["send", "GWB", "across the backbone"]);
        if out.status.success() {
            let said = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(said.contains("GWB"), "{said}");
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "GWB never reachable from site A: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            north.log_text()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let inbox = south.wait_inbox(1);
    assert!(
        inbox.iter().any(|m| m["text"] == "across the backbone"),
        "{inbox:?}\n{}",
        south.log_text()
    );
    assert!(north.log_text().contains("gateway_publish"));
    // Samba's smbclient at site A, calling GWB at A's gateway (the only
    // host it can reach), gets its success reply and the message arrives.
    let conf = client_conf(
        &lab.dir().join("sa"),
        "interfaces = eth0\n   bind interfaces only = yes",
    );
    let out = lab.exec(
        "sa",
        &[
            "smbclient",
            "-s",
            &conf,
            "-M",
            "GWB",
            "-I",
            SITE_A.gateway,
            "-U",
            "carol",
            "-N",
        ],
        Some(b"from smbclient at site A\n"),
    );
    assert!(
        out.status.success()
            && !stdout(&out).contains("failed")
            && !stderr(&out).contains("cli_message returned"),
        "{}{}\nNORTH:\n{}",
        stdout(&out),
        stderr(&out),
        north.log_text()
    );
    let start = Instant::now();
    while !south
        .inbox()
        .iter()
        .any(|m| m["text"] == "from smbclient at site A\n")
    {
        assert!(
            start.elapsed() < WAIT,
            "smbclient said: {}{}\nNORTH:\n{}\nSOUTH:\n{}",
            stdout(&out),
            stderr(&out),
            north.log_text(),
            south.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let copies = |text: &str, inbox: &[serde_json::Value]| {
        inbox.iter().filter(|m| m["text"] == text).count()
    };
    let inbox = south.inbox();
    assert_eq!(copies("across the backbone", &inbox), 1, "{inbox:?}");
    assert_eq!(copies("from smbclient at site A\n", &inbox), 1, "{inbox:?}");

    // The whole cluster down: local delivery goes on, and a message for
    // the other site waits in the outgoing queue until the cluster is back.
    lab.stop_all();
    wait_log(&mut north, "lost the NATS cluster", 0);
    let local = north.cli(&["send", "GWA", "local while the backbone is down"]);
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    assert!(north
        .wait_inbox(1)
        .iter()
        .any(|m| m["text"] == "local while the backbone is down"));
    let queued = north.cli(&["send", "--queue", "GWB", "waited for the backbone"]);
    assert!(
        queued.status.success(),
        "{}",
        String::from_utf8_lossy(&queued.stderr)
    );
    lab.start_all();
    let start = Instant::now();
    while !south
        .inbox()
        .iter()
        .any(|m| m["text"] == "waited for the backbone")
    {
        assert!(
            start.elapsed() < WAIT,
            "the queued message never arrived:\n{}\n{}",
            north.log_text(),
            south.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let shown = south
        .inbox()
        .iter()
        .filter(|m| m["text"] == "waited for the backbone")
        .count();
    assert_eq!(shown, 1);
    north.stop();
    south.stop();
}
