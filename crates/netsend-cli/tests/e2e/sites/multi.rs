//! The tests against reality of issue 18, on the [`SitesLab`]: a netsend
//! gateway per site (`[gateway]` + `[wins_server] enabled`), netsend hosts
//! using their site's gateway as WINS server, Samba at the sites, and the
//! 3-node cluster with its faults. Every wait is bounded; no timing is
//! asserted.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lab::{js_api_ok, sites_available, stream_info_until, Site, SitesLab, SITE_A, SITE_B};
use crate::harness::{have, netsend_bin, require, run_with_stdin, stderr, stdout, Service};
use crate::samba::{client_conf, start_samba};

/// Limits off on every lab service: the load comes from one address (the
/// sender, or a gateway delivering for a whole site).
const LIMITS: &str = "[limits]\nmax_connections = 1024\nmax_connections_per_source = 1024\n\
                      messages_per_minute = 0\nsender_messages_per_minute = 0\ninbox_quota = 0\n";
/// The longest a message may take to cross, or a name to become known.
const CROSS_WAIT: Duration = Duration::from_secs(90);
/// The longest a message taken by a gateway that was then killed may take:
/// JetStream offers it again after the consumer's `ack_wait` (120 s).
const REDELIVERY_WAIT: Duration = Duration::from_secs(150);
/// Messages sent in a fault test.
const LOAD: usize = 200;

/// The lab with both gateways running.
struct Sites {
    gateways: Vec<Service>,
    lab: SitesLab,
}

impl Sites {
    /// The lab (hosts per site: short name, last octet) with a gateway per
    /// site; `None` (skipped) where the lab cannot be built.
    fn new(tag: &str, hosts_a: &[(&str, u8)], hosts_b: &[(&str, u8)]) -> Option<Self> {
        if !sites_available() {
            return None;
        }
        let lab = SitesLab::new(tag, hosts_a, hosts_b);
        let gateways = [SITE_A, SITE_B]
            .iter()
            .map(|site| gateway(&lab, *site))
            .collect();
        Some(Self { gateways, lab })
    }

    /// Starts netsend `computer` on lab host `host` of `site` (address
    /// `.last`), its site's gateway as WINS server, `extra` TOML appended.
    fn host(&self, site: Site, host: &str, last: u8, computer: &str, extra: &str) -> Service {
        let extra = format!(
            "{LIMITS}[wins]\nserver = \"{}\"\n[queue]\nretry_secs = 1\nmax_retry_secs = 2\n{extra}",
            site.gateway
        );
        Service::start_in(
            Some(&self.lab.ns(host)),
            computer,
            &site.addr(last),
            139,
            137,
            "",
            &extra,
        )
    }

    /// NORTHPC on `a1` and SOUTHPC on `b1`, once a message from one reached
    /// the other's gateway (the path across is up).
    fn pair(&self) -> (Service, Service) {
        let a1 = self.host(SITE_A, "a1", 10, "NORTHPC", "");
        let b1 = self.host(SITE_B, "b1", 10, "SOUTHPC", "");
        self.wait_known(SITE_A, "a1", "SOUTHPC#03");
        let (ok, said) = send(&a1, &["SOUTHPC", "path is up"]);
        assert!(ok, "{said}");
        (a1, b1)
    }

    /// A client smb.conf for lab host `host` resolving through `site`'s
    /// gateway (WINS) only.
    fn client_conf(&self, site: Site, host: &str) -> String {
        client_conf(
            &self.lab.dir().join(host),
            &format!(
                "interfaces = eth0\n   bind interfaces only = yes\n   wins server = {}\n   \
                 name resolve order = wins",
                site.gateway
            ),
        )
    }

    /// `nmblookup NAME` from lab host `host` sent to `site`'s gateway; its
    /// stdout.
    fn lookup(&self, site: Site, host: &str, name: &str) -> String {
        let conf = self.client_conf(site, host);
        let out = self.lab.exec(
            host,
            &["nmblookup", "-s", &conf, "-U", site.gateway, name],
            None,
        );
        stdout(&out)
    }

    /// Waits (bounded) until `site`'s gateway answers a query from `host`
    /// for `name` (`NAME#XX`); the answer.
    fn wait_known(&self, site: Site, host: &str, name: &str) -> String {
        let start = Instant::now();
        let (shown, _) = name.split_once('#').unwrap();
        loop {
            let said = self.lookup(site, host, name);
            if said.contains(&format!(" {shown}<")) {
                return said;
            }
            assert!(
                start.elapsed() < CROSS_WAIT,
                "{name} never became known at {}: {said}",
                site.name
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The gateway of `site`: the site's WINS server and its link to the cluster.
fn gateway(lab: &SitesLab, site: Site) -> Service {
    let extra = format!(
        "{LIMITS}[gateway]\nsite = \"{}\"\n{}\n[wins_server]\nenabled = true\n\
         [queue]\nretry_secs = 1\nmax_retry_secs = 2\n",
        site.name,
        SitesLab::nats_toml()
    );
    Service::start_in(
        Some(&lab.ns(&site.gateway_host())),
        &format!("GW{}", site.letter.to_uppercase()),
        site.gateway,
        139,
        137,
        "",
        &extra,
    )
}

/// `netsend send` from `from` with `args`; whether it was acknowledged
/// (exit status 0, and the "successfully sent" line, or for a broadcast
/// the "was broadcast to" line).
fn send(from: &Service, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        from.netns.as_deref().unwrap(),
        netsend_bin(),
    ])
    .arg("--config")
    .arg(&from.config)
    .arg("send")
    .args(args);
    let out = run_with_stdin(cmd, None);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    (
        out.status.success()
            && (said.contains("successfully sent") || said.contains("was broadcast to")),
        said,
    )
}

/// Sends `LOAD` messages `"{tag} N"` from `from` to `to`, two at a time,
/// calling `meanwhile` with the number acknowledged so far every 50 ms
/// until all were tried; the texts acknowledged.
fn load(from: &Service, to: &str, tag: &str, mut meanwhile: impl FnMut(usize)) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let (ns, config) = (from.netns.clone().unwrap(), from.config.clone());
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (next, acked, ns, config) =
                (next.clone(), acked.clone(), ns.clone(), config.clone());
            let (to, tag) = (to.to_owned(), tag.to_owned());
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= LOAD {
                    return;
                }
                let text = format!("{tag} {i}");
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", &ns, netsend_bin()])
                    .arg("--config")
                    .arg(&config)
                    .args(["send", &to, &text]);
                let out = run_with_stdin(cmd, None);
                if out.status.success() && stdout(&out).contains("successfully sent") {
                    acked.lock().unwrap().push(text);
                }
            })
        })
        .collect();
    while workers.iter().any(|w| !w.is_finished()) {
        let n = acked.lock().unwrap().len();
        meanwhile(n);
        std::thread::sleep(Duration::from_millis(50));
    }
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    acked
}

/// How often each text starting with `tag` is in `target`'s inbox.
fn counts(target: &Service, tag: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for m in target.inbox() {
        let text = m["text"].as_str().unwrap_or_default().trim_end().to_owned();
        if text.starts_with(tag) {
            *counts.entry(text).or_default() += 1;
        }
    }
    counts
}

/// Waits (at most `wait`) until every `acked` text is in `target`'s inbox,
/// then asserts each is there exactly once and nothing of `tag` is there
/// twice.
fn assert_each_once(target: &Service, tag: &str, acked: &[String], wait: Duration) {
    let start = Instant::now();
    let mut seen = counts(target, tag);
    while acked.iter().any(|t| !seen.contains_key(t)) && start.elapsed() < wait {
        std::thread::sleep(Duration::from_millis(500));
        seen = counts(target, tag);
    }
    let missing: Vec<&String> = acked.iter().filter(|t| !seen.contains_key(*t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages missing, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "shown more than once: {twice:?}");
}

/// Waits (bounded) until `target` holds a message whose text is `text`.
fn wait_for_text(target: &Service, text: &str) {
    let start = Instant::now();
    while !counts(target, text).contains_key(text) {
        assert!(start.elapsed() < CROSS_WAIT, "{text:?} never arrived");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The stream leader's node index, from the cluster's stream info.
fn stream_leader(lab: &SitesLab) -> usize {
    let info = js_api_ok(lab, "gwa", "STREAM.INFO.NETSEND", serde_json::json!({}));
    let leader = info["cluster"]["leader"].as_str().unwrap_or("n1");
    leader[1..].parse::<usize>().unwrap_or(1) - 1
}

#[test]
fn both_gateways_join_the_cluster_and_make_the_replicated_stream_and_buckets() {
    let Some(sites) = Sites::new("js", &[], &[]) else {
        return;
    };
    let stream = stream_info_until(&sites.lab, "NETSEND", |i| {
        i["cluster"]["replicas"].as_array().map(Vec::len) == Some(2)
    });
    let config = &stream["config"];
    assert_eq!(
        config["subjects"],
        serde_json::json!(["netsend.>"]),
        "{stream}"
    );
    assert_eq!(config["storage"], "file");
    assert_eq!(config["num_replicas"], 3);
    assert_eq!(config["duplicate_window"], 600_000_000_000u64);
    assert_eq!(config["max_age"], 24 * 3600 * 1_000_000_000u64);
    for bucket in ["KV_netsend_names", "KV_netsend_seen"] {
        let info = stream_info_until(&sites.lab, bucket, |i| i["config"]["num_replicas"] == 3);
        assert_eq!(info["config"]["num_replicas"], 3, "{info}");
    }
    // Both gateways hold a client connection to the cluster (the second
    // may join after the first made the stream).
    let start = Instant::now();
    loop {
        let connz: usize = (0..3)
            .filter_map(|i| sites.lab.http_get(i, "/connz").ok())
            .flat_map(|c| c["connections"].as_array().cloned().unwrap_or_default())
            .filter(|c| {
                [SITE_A.backbone, SITE_B.backbone].contains(&c["ip"].as_str().unwrap_or_default())
            })
            .count();
        if connz >= 2 {
            break;
        }
        assert!(start.elapsed() < CROSS_WAIT, "gateway connections: {connz}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn names_registered_at_site_b_resolve_at_site_a() {
    if !require(have("nmblookup"), "Samba's nmblookup") {
        return;
    }
    let Some(sites) = Sites::new("nm", &[("a1", 10)], &[("b1", 10)]) else {
        return;
    };
    let _b1 = sites.host(SITE_B, "b1", 10, "SOUTHPC", "");
    // Site B's own server knows the name with its owner's address.
    let at_b = sites.wait_known(SITE_B, "gwb", "SOUTHPC#03");
    assert!(at_b.contains("198.51.100.10 SOUTHPC<03>"), "{at_b}");
    // Site A answers with its own gateway (proxy mode: the sites cannot
    // reach each other).
    let at_a = sites.wait_known(SITE_A, "a1", "SOUTHPC#03");
    assert!(at_a.contains("192.0.2.1 SOUTHPC<03>"), "{at_a}");
    // A name held nowhere is not made up.
    let nowhere = sites.lookup(SITE_A, "a1", "NOBODYHERE#03");
    assert!(!nowhere.contains("NOBODYHERE<03>"), "{nowhere}");
}

/// `smbclient -M to` from site NORTH's host `a1`, resolving `to` through
/// NORTH's gateway (WINS), with `text`; asserts smbclient was answered with
/// success.
fn smbclient_from_north(sites: &Sites, to: &str, text: &str) {
    sites.wait_known(SITE_A, "a1", &format!("{to}#03"));
    let conf = sites.client_conf(SITE_A, "a1");
    let out = sites.lab.exec(
        "a1",
        &[
            "smbclient",
            "-s",
            &conf,
            "-M",
            to,
            "-U",
            "alice",
            "-n",
            "NORTHCLI",
        ],
        Some(format!("{text}\n").as_bytes()),
    );
    assert!(
        out.status.success() && !stderr(&out).contains("cli_message returned"),
        "smbclient -M {to}: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Whether Samba's client tools are here.
fn samba_here() -> bool {
    require(
        have("smbd") && have("nmbd") && have("smbclient") && have("nmblookup"),
        "Samba (apt-get install samba smbclient)",
    )
}

#[test]
fn smbclient_at_site_a_reaches_a_netsend_host_at_site_b_by_name() {
    if !samba_here() {
        return;
    }
    let Some(sites) = Sites::new("sc", &[("a1", 10)], &[("b1", 10)]) else {
        return;
    };
    let b1 = sites.host(SITE_B, "b1", 10, "SOUTHPC", "");
    smbclient_from_north(&sites, "SOUTHPC", "to netsend at SOUTH");
    wait_for_text(&b1, "to netsend at SOUTH");
    let inbox = b1.inbox();
    let m = inbox
        .iter()
        .find(|m| {
            m["text"]
                .as_str()
                .unwrap_or_default()
                .starts_with("to netsend")
        })
        .unwrap();
    assert_eq!(m["from"], "alice", "{m}");
}

#[test]
fn smbclient_at_site_a_reaches_smbd_at_site_b_by_name() {
    if !samba_here() {
        return;
    }
    let Some(sites) = Sites::new("ss", &[("a1", 10)], &[("b2", 20)]) else {
        return;
    };
    let smb_dir = sites.lab.dir().join("b2");
    start_samba(
        &smb_dir,
        &sites.lab.ns("b2"),
        "SOUTHSMB",
        &format!(
            "name resolve order = wins bcast\n   wins server = {}",
            SITE_B.gateway
        ),
    );
    smbclient_from_north(&sites, "SOUTHSMB", "to smbd at SOUTH");
    let log = smb_dir.join("smbd/inbox/msgs.log");
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("to smbd at SOUTH")
    {
        assert!(start.elapsed() < CROSS_WAIT, "smbd at SOUTH never got it");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn net_send_domain_at_site_a_arrives_once_on_every_host_of_the_domain_at_site_b() {
    let Some(sites) = Sites::new(
        "dm",
        &[("a1", 10), ("a2", 11)],
        &[("b1", 10), ("b2", 11), ("b3", 12)],
    ) else {
        return;
    };
    let a1 = sites.host(SITE_A, "a1", 10, "NORTHPC", "");
    let a2 = sites.host(SITE_A, "a2", 11, "NORTHPC2", "");
    let b1 = sites.host(SITE_B, "b1", 10, "SOUTHPC", "");
    let b2 = sites.host(SITE_B, "b2", 11, "SOUTHPC2", "");
    let b3 = Service::start_in(
        Some(&sites.lab.ns("b3")),
        "OTHERPC",
        &SITE_B.addr(12),
        139,
        137,
        "workgroup = \"OTHERGRP\"\n",
        LIMITS,
    );
    // The path is up once a directed message crossed.
    sites.wait_known(SITE_A, "a1", "SOUTHPC#03");
    let (ok, said) = send(&a1, &["SOUTHPC", "path is up"]);
    assert!(ok, "{said}");
    let text = "to all of TESTGROUP";
    let (ok, said) = send(&a1, &["/DOMAIN", text]);
    assert!(ok, "{said}");
    for host in [&b1, &b2, &a2] {
        wait_for_text(host, text);
    }
    // A second round shows nothing came twice meanwhile (no loop between
    // the gateways), and OTHERGRP's host got nothing.
    let (ok, said) = send(&a1, &["/DOMAIN", "second round"]);
    assert!(ok, "{said}");
    for host in [&b1, &b2, &a2] {
        wait_for_text(host, "second round");
        assert_eq!(counts(host, text).get(text), Some(&1), "{:?}", host.inbox());
        assert_eq!(counts(host, "second round").len(), 1);
    }
    assert!(counts(&b3, "").is_empty(), "{:?}", b3.inbox());
}

#[test]
fn killing_one_nats_node_under_load_loses_nothing_acknowledged() {
    let Some(mut sites) = Sites::new("kn", &[("a1", 10)], &[("b1", 10)]) else {
        return;
    };
    let (a1, b1) = sites.pair();
    let victim = stream_leader(&sites.lab);
    let (mut killed, mut back) = (false, false);
    let lab = &mut sites.lab;
    let acked = load(&a1, "SOUTHPC", "node", |n| {
        if !killed && n >= LOAD / 4 {
            lab.kill_node(victim);
            killed = true;
        } else if killed && !back && n >= LOAD * 3 / 4 {
            lab.start_node(victim);
            back = true;
        }
    });
    assert!(killed, "the node was never killed: {} acked", acked.len());
    lab.start_node(victim);
    assert!(
        acked.len() > LOAD / 2,
        "with one node of three down most sends still go through: {}",
        acked.len()
    );
    assert_each_once(&b1, "node", &acked, CROSS_WAIT);
}

#[test]
fn killing_and_restarting_the_target_gateway_under_load_loses_nothing_and_shows_nothing_twice() {
    let Some(mut sites) = Sites::new("kg", &[("a1", 10)], &[("b1", 10)]) else {
        return;
    };
    let (a1, b1) = sites.pair();
    let mut restarted = false;
    let target = &mut sites.gateways[1];
    let acked = load(&a1, "SOUTHPC", "gateway", |n| {
        if !restarted && n >= LOAD / 3 {
            target.crash_and_restart();
            restarted = true;
        }
    });
    assert!(restarted, "the gateway was never restarted");
    assert!(
        acked.len() > LOAD / 2,
        "site A's gateway keeps taking messages for SOUTH: {}",
        acked.len()
    );
    assert_each_once(&b1, "gateway", &acked, REDELIVERY_WAIT);
}

#[test]
fn with_nats_down_each_site_delivers_locally_and_cross_site_messages_arrive_after() {
    let Some(mut sites) = Sites::new("nd", &[("a1", 10), ("a2", 11)], &[("b1", 10), ("b2", 11)])
    else {
        return;
    };
    let a1 = sites.host(SITE_A, "a1", 10, "NORTHPC", "");
    let a2 = sites.host(SITE_A, "a2", 11, "NORTHPC2", "");
    let b1 = sites.host(SITE_B, "b1", 10, "SOUTHPC", "");
    let b2 = sites.host(SITE_B, "b2", 11, "SOUTHPC2", "");
    sites.wait_known(SITE_A, "a1", "SOUTHPC#03");
    let (ok, said) = send(&a1, &["SOUTHPC", "path is up"]);
    assert!(ok, "{said}");

    sites.lab.stop_all();
    for (from, to, to_name) in [(&a1, &a2, "NORTHPC2"), (&b1, &b2, "SOUTHPC2")] {
        let text = format!("local to {to_name} while NATS is down");
        let (ok, said) = send(from, &[to_name, &text]);
        assert!(ok, "{said}");
        wait_for_text(to, &text);
    }
    let (_, said) = send(&a1, &["--queue", "SOUTHPC", "across while NATS is down"]);
    assert!(
        said.contains("successfully sent") || said.contains("queue"),
        "{said}"
    );
    sites.lab.start_all();
    wait_for_text(&b1, "across while NATS is down");
    assert_eq!(counts(&b1, "across while").len(), 1);
}
