//! The sites case (not a test): directed messages from a host at site A to a
//! host at site B through both gateways and a 3-node NATS JetStream cluster,
//! beside direct delivery between two hosts of site A's LAN, in the same run.
//!
//! The namespaces: a backbone 203.0.113.0/24 with three `nats-server` nodes
//! and both gateways' second legs; site A 192.0.2.0/24 (gateway A, the
//! sender, the direct receiver); site B 198.51.100.0/24 (gateway B, the far
//! receiver); no route between the sites. The sender is this binary's `load`
//! with stamped texts, so each receiver's inbox gives end-to-end latencies
//! (all namespaces share one clock) besides the sender's acknowledged ones.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::lan::{in_ns, load_args, median, sh, start_host, Host, Lan, UNLIMITED};
use crate::load::{stamp_of, Measured};

const BRIDGES: &str = "nsbs-br";
/// The NATS nodes: namespace and backbone address.
const NODES: [(&str, &str); 3] = [
    ("nsbs-n1", "203.0.113.11"),
    ("nsbs-n2", "203.0.113.12"),
    ("nsbs-n3", "203.0.113.13"),
];
/// The gateways: host, backbone address, site name.
const GATEWAYS: [(Host, &str, &str); 2] = [
    (
        Host {
            ns: ("nsbs-gwa", "192.0.2.1"),
            computer: "GWA",
        },
        "203.0.113.21",
        "A",
    ),
    (
        Host {
            ns: ("nsbs-gwb", "198.51.100.1"),
            computer: "GWB",
        },
        "203.0.113.22",
        "B",
    ),
];
/// The load generator's namespace at site A (no netsend there).
const SENDER: (&str, &str) = ("nsbs-a1", "192.0.2.10");
/// The direct receiver, on site A's LAN.
const NEAR: Host = Host {
    ns: ("nsbs-a2", "192.0.2.11"),
    computer: "NEAR",
};
/// The receiver at site B.
const FAR: Host = Host {
    ns: ("nsbs-b1", "198.51.100.10"),
    computer: "FAR",
};
/// The longest wait for the cross-site path to come up or a run to arrive.
const WAIT: Duration = Duration::from_secs(120);

/// A veth from bridge `bridge` (port `port`) to `ns` (device `dev`) with
/// address `cidr`.
fn plug(bridge: &str, port: &str, ns: &str, dev: &str, cidr: &str) -> Result<(), String> {
    sh(&[
        "ip", "-n", BRIDGES, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", ns,
    ])?;
    sh(&[
        "ip", "-n", BRIDGES, "link", "set", port, "master", bridge, "up",
    ])?;
    sh(&[
        "ip",
        "-n",
        ns,
        "addr",
        "add",
        cidr,
        "broadcast",
        "+",
        "dev",
        dev,
    ])?;
    sh(&["ip", "-n", ns, "link", "set", dev, "up"])?;
    Ok(())
}

/// Builds the namespaces (torn down when the returned LAN drops).
fn build() -> Result<Lan, String> {
    let mut lan = Lan {
        children: Vec::new(),
        namespaces: Vec::new(),
    };
    let hosts: Vec<&'static str> = NODES
        .iter()
        .map(|n| n.0)
        .chain(GATEWAYS.iter().map(|g| g.0.ns.0))
        .chain([SENDER.0, NEAR.ns.0, FAR.ns.0])
        .collect();
    lan.namespaces.extend(&hosts);
    lan.namespaces.push(BRIDGES);
    sh(&["ip", "netns", "add", BRIDGES])?;
    for br in ["br0", "br1", "br2"] {
        sh(&["ip", "-n", BRIDGES, "link", "add", br, "type", "bridge"])?;
        sh(&["ip", "-n", BRIDGES, "link", "set", br, "up"])?;
    }
    for ns in &hosts {
        sh(&["ip", "netns", "add", ns])?;
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
    }
    for (i, (ns, addr)) in NODES.iter().enumerate() {
        plug("br0", &format!("n{i}"), ns, "eth0", &format!("{addr}/24"))?;
    }
    for (i, (gw, backbone, _)) in GATEWAYS.iter().enumerate() {
        let site = format!("br{}", i + 1);
        plug(
            &site,
            &format!("g{i}"),
            gw.ns.0,
            "eth0",
            &format!("{}/24", gw.ns.1),
        )?;
        plug(
            "br0",
            &format!("gb{i}"),
            gw.ns.0,
            "eth1",
            &format!("{backbone}/24"),
        )?;
    }
    for (i, (ns, addr, br)) in [
        (SENDER.0, SENDER.1, "br1"),
        (NEAR.ns.0, NEAR.ns.1, "br1"),
        (FAR.ns.0, FAR.ns.1, "br2"),
    ]
    .iter()
    .enumerate()
    {
        plug(br, &format!("h{i}"), ns, "eth0", &format!("{addr}/24"))?;
    }
    sh(&[
        "ip",
        "netns",
        "exec",
        SENDER.0,
        "sysctl",
        "-qw",
        "net.ipv4.ip_local_port_range=1024 65535",
        "net.ipv4.tcp_tw_reuse=1",
    ])?;
    Ok(lan)
}

/// Starts the three `nats-server` nodes as one JetStream cluster.
fn start_cluster(lan: &mut Lan, dir: &Path) -> Result<(), String> {
    let routes: Vec<String> = NODES
        .iter()
        .map(|(_, a)| format!("nats-route://{a}:6222"))
        .collect();
    for (i, (ns, addr)) in NODES.iter().enumerate() {
        let d = dir.join(format!("n{i}"));
        std::fs::create_dir_all(d.join("store")).map_err(|e| e.to_string())?;
        let conf = d.join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "server_name: n{i}\nlisten: {addr}:4222\njetstream {{\n  store_dir: \"{}\"\n}}\n\
                 cluster {{\n  name: netsend-bench\n  listen: {addr}:6222\n  routes: [{}]\n}}\n",
                d.join("store").display(),
                routes.join(", ")
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "nats-server", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nats-server (apt-get install nats-server): {e}"))?;
        lan.children.push(child);
    }
    Ok(())
}

/// Starts the gateways and the two receivers.
fn start_services(lan: &mut Lan, dir: &Path) -> Result<std::path::PathBuf, String> {
    let nats: Vec<String> = NODES
        .iter()
        .map(|(_, a)| format!("\"nats://{a}:4222\""))
        .collect();
    for (gw, _, site) in &GATEWAYS {
        let tables = format!(
            "{UNLIMITED}[gateway]\nsite = \"{site}\"\nnats = [{}]\n[wins_server]\nenabled = true\n",
            nats.join(", ")
        );
        start_host(lan, gw, &dir.join(gw.computer), &tables, "")?;
    }
    start_host(lan, &NEAR, &dir.join(NEAR.computer), UNLIMITED, "")?;
    let far = format!("{UNLIMITED}[wins]\nserver = \"{}\"\n", GATEWAYS[1].0.ns.1);
    start_host(lan, &FAR, &dir.join(FAR.computer), &far, "")
}

/// One receiver's inbox: (sender name, text, received at Unix ms).
fn inbox(config: &Path) -> Result<Vec<(String, String, i64)>, String> {
    let netsend = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("netsend");
    let out = sh(&[
        netsend.to_str().unwrap_or("netsend"),
        "--config",
        config.to_str().unwrap_or_default(),
        "inbox",
        "--all",
        "--json",
    ])?;
    let all: Vec<serde_json::Value> = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    Ok(all
        .iter()
        .map(|m| {
            (
                m["from"].as_str().unwrap_or_default().to_owned(),
                m["text"].as_str().unwrap_or_default().to_owned(),
                m["received_at"].as_i64().unwrap_or_default(),
            )
        })
        .collect())
}

/// What a run's receiver holds: delivered per second (first send to last
/// arrival), end-to-end p50/p99 ms, and the distinct and duplicate messages.
struct Arrived {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    distinct: usize,
    duplicates: usize,
}

/// Waits (bounded) until `config`'s inbox holds `acked` messages from
/// `from`, then measures them.
fn arrived(config: &Path, from: &str, acked: usize) -> Result<Arrived, String> {
    let start = Instant::now();
    let mine = loop {
        let mine: Vec<(usize, i64, i64)> = inbox(config)?
            .into_iter()
            .filter(|(f, _, _)| f == from)
            .filter_map(|(_, text, at)| stamp_of(&text).map(|(seq, sent)| (seq, sent, at)))
            .collect();
        if mine.len() >= acked || start.elapsed() > WAIT {
            break mine;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let distinct: HashSet<usize> = mine.iter().map(|m| m.0).collect();
    let mut latencies: Vec<f64> = mine.iter().map(|m| (m.2 - m.1) as f64).collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let first = mine.iter().map(|m| m.1).min().unwrap_or(0);
    let last = mine.iter().map(|m| m.2).max().unwrap_or(0);
    Ok(Arrived {
        per_sec: mine.len() as f64 * 1000.0 / ((last - first).max(1) as f64),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        distinct: distinct.len(),
        duplicates: mine.len() - distinct.len(),
    })
}

/// One path's medians: acknowledged msg/s, p50, p99; delivered msg/s,
/// end-to-end p50, p99.
fn medians(runs: &[(Measured, Arrived)]) -> [f64; 6] {
    let m = |f: &dyn Fn(&(Measured, Arrived)) -> f64| median(runs.iter().map(f).collect());
    [
        m(&|r| r.0.per_sec),
        m(&|r| r.0.p50_ms),
        m(&|r| r.0.p99_ms),
        m(&|r| r.1.per_sec),
        m(&|r| r.1.p50_ms),
        m(&|r| r.1.p99_ms),
    ]
}

/// Runs the sites case: `count` messages per run and path, `repeat` runs at
/// concurrency 1 and 16; prints both paths side by side with the ratio.
pub(crate) fn run(count: usize, repeat: usize) -> Result<(), String> {
    let dir = crate::lan::scratch()?;
    let mut lan = build()?;
    start_cluster(&mut lan, dir.path())?;
    let far = start_services(&mut lan, dir.path())?;
    let near = dir.path().join(NEAR.computer).join("netsend.toml");
    let via = GATEWAYS[0].0.ns.1;
    // The cross-site path is up once a message goes through: the cluster
    // formed, both gateways joined it and B's name reached A's directory.
    let start = Instant::now();
    loop {
        let args = load_args(via, FAR.computer, "1", "1", &["--from", "warmup"]);
        if in_ns(SENDER.0, &args).is_ok_and(|m| m.ok == 1) {
            break;
        }
        if start.elapsed() > WAIT {
            return Err("no message went from site A to site B".into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "sites: up after {:.1} s; {count} messages per run, median of {repeat} runs",
        start.elapsed().as_secs_f64()
    );
    println!(
        "{:<26} {:>9} {:>8} {:>8} | {:>9} {:>8} {:>8} | {:>6}",
        "case", "acked/s", "p50 ms", "p99 ms", "deliv/s", "e2e p50", "e2e p99", "ratio"
    );
    let count_s = count.to_string();
    let (mut lost, mut twice) = (0, 0);
    for conc in [1usize, 16] {
        let conc_s = conc.to_string();
        let mut paths: [Vec<(Measured, Arrived)>; 2] = [Vec::new(), Vec::new()];
        for run in 0..repeat.max(1) {
            for (i, (target, name, config)) in
                [(NEAR.ns.1, NEAR.computer, &near), (via, FAR.computer, &far)]
                    .into_iter()
                    .enumerate()
            {
                let from = format!("c{conc}r{run}");
                let extra = ["--from", from.as_str(), "--stamp", "--size", "40"];
                let args = load_args(target, name, &count_s, &conc_s, &extra);
                let sent = in_ns(SENDER.0, &args)?;
                let got = arrived(config, &from, sent.ok)?;
                lost += sent.ok.saturating_sub(got.distinct);
                twice += got.duplicates;
                paths[i].push((sent, got));
            }
        }
        let [d, s] = [medians(&paths[0]), medians(&paths[1])];
        for (label, v) in [("direct (one LAN)", d), ("A -> B via gateways", s)] {
            println!(
                "{:<26} {:>9.1} {:>8.2} {:>8.2} | {:>9.1} {:>8.2} {:>8.2} |",
                format!("{label}, c={conc}"),
                v[0],
                v[1],
                v[2],
                v[3],
                v[4],
                v[5]
            );
        }
        println!(
            "{:<26} {:>9} {:>8} {:>8} | {:>9} {:>8} {:>8} | {:>5.1}x",
            format!("direct / sites, c={conc}"),
            "",
            "",
            "",
            "",
            "",
            "",
            d[3] / s[3].max(0.001)
        );
    }
    println!("delivery: {lost} acknowledged messages missing, {twice} shown twice");
    if lost + twice > 0 {
        return Err("an acknowledged message was lost or shown twice".into());
    }
    Ok(())
}
