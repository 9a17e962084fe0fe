//! The multi-site lab (issue 18): a backbone of three `nats-server` nodes
//! forming a JetStream cluster, and two site LANs on separate subnets with no
//! route between them; each site's gateway has a leg on its LAN and one on the
//! backbone, every other host only its LAN. Built from network namespaces
//! (bridges in their own namespace, nothing in the root one) and torn down in
//! `Drop`, also after a panic.
//!
//! ```text
//!  backbone 203.0.113.0/24:  n1 .11   n2 .12   n3 .13   gwa .21   gwb .22
//!  site A (NORTH) 192.0.2.0/24:     gwa .1   hosts .10 ...
//!  site B (SOUTH) 198.51.100.0/24:  gwb .1   hosts .10 ...
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{have, lans_available, require, Lan};

/// The NATS nodes' backbone addresses.
pub(crate) const NODES: [&str; 3] = ["203.0.113.11", "203.0.113.12", "203.0.113.13"];
/// Client, cluster and monitoring ports of every node.
const CLIENT_PORT: u16 = 4222;
const CLUSTER_PORT: u16 = 6222;
const HTTP_PORT: u16 = 8222;
/// The longest the lab waits for the cluster to (re)form.
const CLUSTER_WAIT: Duration = Duration::from_secs(45);
/// How long one NATS request waits for its reply.
const REQUEST_WAIT: Duration = Duration::from_secs(5);

/// One site: its letter (namespace prefix), subnet, broadcast address, and
/// its gateway's addresses on the site LAN and on the backbone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site {
    /// The site's name in `[gateway] site`.
    pub(crate) name: &'static str,
    /// `a` or `b`; the gateway's host is `gw{letter}`.
    pub(crate) letter: &'static str,
    /// The first three octets of the site LAN.
    pub(crate) net: &'static str,
    /// The site LAN's broadcast address.
    pub(crate) broadcast: &'static str,
    /// The gateway's address on the site LAN.
    pub(crate) gateway: &'static str,
    /// The gateway's address on the backbone.
    pub(crate) backbone: &'static str,
}

/// Site A.
pub(crate) const SITE_A: Site = Site {
    name: "NORTH",
    letter: "a",
    net: "192.0.2",
    broadcast: "192.0.2.255",
    gateway: "192.0.2.1",
    backbone: "203.0.113.21",
};

/// Site B.
pub(crate) const SITE_B: Site = Site {
    name: "SOUTH",
    letter: "b",
    net: "198.51.100",
    broadcast: "198.51.100.255",
    gateway: "198.51.100.1",
    backbone: "203.0.113.22",
};

impl Site {
    /// The lab host name of this site's gateway.
    pub(crate) fn gateway_host(&self) -> String {
        format!("gw{}", self.letter)
    }

    /// Address `.last` on this site's LAN.
    pub(crate) fn addr(&self, last: u8) -> String {
        format!("{}.{last}", self.net)
    }
}

/// One `nats-server` of the cluster: its config, store and log, and the
/// running process if any.
struct Node {
    host: String,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// The lab: the namespaces, the cluster, and a scratch directory holding the
/// nodes' configs, JetStream stores and logs (kept across restarts).
pub(crate) struct SitesLab {
    nodes: Vec<Node>,
    lan: Lan,
    dir: tempfile::TempDir,
}

/// Whether the lab can be built here: root, iproute2 and `nats-server`.
pub(crate) fn sites_available() -> bool {
    lans_available()
        && require(
            have("nats-server"),
            "nats-server (apt-get install nats-server)",
        )
}

impl SitesLab {
    /// Builds the backbone with the three nodes and both gateways, site A
    /// with `hosts_a` and site B with `hosts_b` (short name, last octet),
    /// then starts the cluster and waits until it has a JetStream leader.
    pub(crate) fn new(tag: &str, hosts_a: &[(&str, u8)], hosts_b: &[(&str, u8)]) -> Self {
        let mut lan = Lan::bridges(tag, 3);
        for (i, addr) in NODES.iter().enumerate() {
            lan.attach(
                0,
                i,
                &format!("n{}", i + 1),
                &format!("{addr}/24"),
                "203.0.113.255",
                None,
            );
        }
        for (bridge, (site, hosts)) in [(SITE_A, hosts_a), (SITE_B, hosts_b)].iter().enumerate() {
            let bridge = bridge + 1;
            let gw = site.gateway_host();
            let base = bridge * 100;
            lan.attach(
                bridge,
                base,
                &gw,
                &format!("{}/24", site.gateway),
                site.broadcast,
                None,
            );
            lan.leg(
                0,
                10 + bridge,
                &gw,
                "eth1",
                &format!("{}/24", site.backbone),
                "203.0.113.255",
            );
            for (i, (name, last)) in hosts.iter().enumerate() {
                lan.attach(
                    bridge,
                    base + 1 + i,
                    name,
                    &format!("{}/24", site.addr(*last)),
                    site.broadcast,
                    None,
                );
            }
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let nodes = (0..NODES.len())
            .map(|i| node_config(dir.path(), i))
            .collect();
        let mut lab = Self { nodes, lan, dir };
        lab.start_all();
        lab
    }

    /// The client URLs of the three nodes, as a `[gateway] nats` list.
    pub(crate) fn nats_urls() -> Vec<String> {
        NODES
            .iter()
            .map(|a| format!("nats://{a}:{CLIENT_PORT}"))
            .collect()
    }

    /// The `nats = [...]` TOML line for a gateway.
    pub(crate) fn nats_toml() -> String {
        let urls: Vec<String> = Self::nats_urls()
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect();
        format!("nats = [{}]", urls.join(", "))
    }

    /// The lab's scratch directory (readable by everyone).
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The namespace of lab host `name`.
    pub(crate) fn ns(&self, name: &str) -> String {
        self.lan.ns(name)
    }

    /// Runs a command inside lab host `name`'s namespace.
    pub(crate) fn exec(&self, name: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        self.lan.exec(name, args, stdin)
    }

    /// Starts node `i` (0-based) on its config and store, if not running.
    pub(crate) fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            return;
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.lan.ns(&node.host),
                "nats-server",
                "-c",
            ])
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        node.child = Some(child);
    }

    /// Kills node `i` with SIGKILL (a crash).
    pub(crate) fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops every node (SIGTERM, then SIGKILL after a bounded wait); their
    /// stores stay for [`SitesLab::start_all`].
    pub(crate) fn stop_all(&mut self) {
        for node in &mut self.nodes {
            let Some(mut child) = node.child.take() else {
                continue;
            };
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts every stopped node and waits (bounded) for a JetStream leader
    /// that all running nodes agree on.
    pub(crate) fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start_node(i);
        }
        self.wait_cluster();
    }

    /// Waits (bounded) until every running node reports the same JetStream
    /// meta leader in a cluster of three; panics with the nodes' logs if not.
    pub(crate) fn wait_cluster(&mut self) {
        let deadline = Instant::now() + CLUSTER_WAIT;
        let mut last = String::new();
        while Instant::now() < deadline {
            let leaders: Vec<Option<String>> = self
                .running()
                .map(|i| self.meta_leader(i).map_err(|e| last = e).ok())
                .collect();
            if let Some(Some(first)) = leaders.first() {
                if leaders.iter().all(|l| l.as_deref() == Some(first.as_str())) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the NATS cluster did not form a JetStream leader ({last})");
    }

    /// The indexes of the running nodes.
    fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|i| self.nodes[*i].child.is_some())
    }

    /// Node `i`'s JetStream meta leader from its `/jsz`, if it knows one in
    /// a cluster of three.
    fn meta_leader(&self, i: usize) -> Result<String, String> {
        let jsz = self.http_get(i, "/jsz")?;
        let meta = &jsz["meta_cluster"];
        match (meta["leader"].as_str(), meta["cluster_size"].as_u64()) {
            (Some(leader), Some(3)) if !leader.is_empty() => Ok(leader.to_owned()),
            _ => Err(format!("n{}: no meta leader: {meta}", i + 1)),
        }
    }

    /// A monitoring endpoint of node `i` as JSON.
    pub(crate) fn http_get(&self, i: usize, path: &str) -> Result<serde_json::Value, String> {
        let addr: SocketAddr = format!("{}:{HTTP_PORT}", NODES[i]).parse().unwrap();
        let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", NODES[i]);
        let body = in_netns(&self.ns(&format!("n{}", i + 1)), move || {
            let mut s = TcpStream::connect_timeout(&addr, REQUEST_WAIT)?;
            s.set_read_timeout(Some(REQUEST_WAIT))?;
            s.write_all(request.as_bytes())?;
            let mut reply = Vec::new();
            s.take(1 << 20).read_to_end(&mut reply)?;
            Ok::<_, std::io::Error>(reply)
        })
        .map_err(|e| format!("n{} {path}: {e}", i + 1))?;
        let text = String::from_utf8_lossy(&body);
        let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(json).map_err(|e| format!("n{} {path}: {e}: {text}", i + 1))
    }
}

impl Drop for SitesLab {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(30)..];
                eprintln!("--- nats {} log ---\n{}", node.host, tail.join("\n"));
            }
        }
        // The Lan drops next: whatever still runs in its namespaces is killed
        // and the namespaces deleted.
    }
}

/// Writes node `i`'s config: its name, client/monitoring listeners on its
/// backbone address, JetStream with a store in `dir`, and the cluster routes
/// to all three nodes (its own route is harmless).
fn node_config(dir: &std::path::Path, i: usize) -> Node {
    let host = format!("n{}", i + 1);
    let addr = NODES[i];
    let store = dir.join(&host).join("store");
    std::fs::create_dir_all(&store).unwrap();
    let routes: Vec<String> = NODES
        .iter()
        .map(|a| format!("nats-route://{a}:{CLUSTER_PORT}"))
        .collect();
    let config = dir.join(&host).join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "server_name: {host}\nlisten: {addr}:{CLIENT_PORT}\nhttp: {addr}:{HTTP_PORT}\n\
             jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}}\n\
             cluster {{\n  name: netsend-lab\n  listen: {addr}:{CLUSTER_PORT}\n  routes: [{}]\n}}\n",
            store.display(),
            routes.join(", ")
        ),
    )
    .unwrap();
    Node {
        log: dir.join(&host).join("nats.log"),
        host,
        config,
        child: None,
    }
}

/// Runs `f` on a thread that has entered network namespace `ns` (sockets it
/// opens live there), and returns its result.
pub(crate) fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path)?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        f()
    })
    .join()
    .expect("netns thread panicked")
}

/// Why a NATS request failed.
#[derive(Debug)]
pub(crate) enum NatsError {
    /// The connection failed or no reply came in time.
    Io(std::io::Error),
    /// No server-side subscriber (e.g. a stream without a leader): status 503.
    NoResponders,
    /// The server refused the protocol operation (`-ERR`).
    Server(String),
}

impl std::fmt::Display for NatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::NoResponders => f.write_str("no responders"),
            Self::Server(s) => write!(f, "server: {s}"),
        }
    }
}

impl From<std::io::Error> for NatsError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// A tiny NATS client speaking the text protocol (`CONNECT`, `SUB`, `HPUB`,
/// `PING`/`PONG`), enough for JetStream API requests and publishes with a
/// `Nats-Msg-Id`. Use it inside [`in_netns`].
pub(crate) struct NatsConn {
    stream: BufReader<TcpStream>,
    next: u64,
}

impl NatsConn {
    /// Connects to `addr` (host:port) and completes the handshake.
    pub(crate) fn connect(addr: &str) -> Result<Self, NatsError> {
        let addr: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
        let tcp = TcpStream::connect_timeout(&addr, REQUEST_WAIT)?;
        tcp.set_read_timeout(Some(REQUEST_WAIT))?;
        let mut conn = Self {
            stream: BufReader::new(tcp),
            next: 0,
        };
        let info = conn.line()?;
        if !info.starts_with("INFO ") {
            return Err(NatsError::Server(info));
        }
        conn.send(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"name\":\"netsend-lab\"}\r\n\
              SUB _INBOX.lab.* 1\r\nPING\r\n",
        )?;
        loop {
            match conn.line()?.as_str() {
                "PONG" => return Ok(conn),
                l if l.starts_with("-ERR") => return Err(NatsError::Server(l.to_owned())),
                _ => {}
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.get_mut().write_all(bytes)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        (&mut self.stream).take(64 * 1024).read_line(&mut line)?;
        if line.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end().to_owned())
    }

    /// Sends `payload` to `subject` (with header `Nats-Msg-Id: msg_id` if
    /// given) and returns the reply's payload.
    pub(crate) fn request(
        &mut self,
        subject: &str,
        msg_id: Option<&str>,
        payload: &[u8],
    ) -> Result<Vec<u8>, NatsError> {
        self.next += 1;
        let reply = format!("_INBOX.lab.{}", self.next);
        let headers = match msg_id {
            Some(id) => format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n"),
            None => "NATS/1.0\r\n\r\n".to_owned(),
        };
        let mut frame = format!(
            "HPUB {subject} {reply} {} {}\r\n{headers}",
            headers.len(),
            headers.len() + payload.len()
        )
        .into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.send(&frame)?;
        loop {
            let line = self.line()?;
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["PING"] => self.send(b"PONG\r\n")?,
                ["MSG", subj, _sid, len] => {
                    let body = self.body(len.parse().unwrap_or(0))?;
                    if *subj == reply {
                        return Ok(body);
                    }
                }
                ["HMSG", subj, _sid, hlen, len] => {
                    let body = self.body(len.parse().unwrap_or(0))?;
                    let hlen = hlen.parse::<usize>().unwrap_or(0).min(body.len());
                    if *subj != reply {
                        continue;
                    }
                    let head = String::from_utf8_lossy(&body[..hlen]);
                    if head.starts_with("NATS/1.0 503") {
                        return Err(NatsError::NoResponders);
                    }
                    return Ok(body[hlen..].to_vec());
                }
                [err, ..] if err.starts_with("-ERR") => return Err(NatsError::Server(line)),
                _ => {}
            }
        }
    }

    /// A message body of `len` bytes and its CRLF (bounded by the caller's
    /// 1 MiB replies).
    fn body(&mut self, len: usize) -> std::io::Result<Vec<u8>> {
        let mut body = vec![0; len.min(1 << 20) + 2];
        self.stream.read_exact(&mut body)?;
        body.truncate(body.len() - 2);
        Ok(body)
    }

    /// A JetStream API request with a JSON body; the JSON reply.
    pub(crate) fn js_api(
        &mut self,
        api: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, NatsError> {
        let reply = self.request(&format!("$JS.API.{api}"), None, body.to_string().as_bytes())?;
        serde_json::from_slice(&reply).map_err(|e| NatsError::Server(e.to_string()))
    }
}

/// Publishes `text` to `subject` from host `from` (whose namespace reaches
/// the backbone) with message id `id`, retrying with the same id on any node
/// until a JetStream ack (bounded); the ack's JSON.
pub(crate) fn publish_acked(
    lab: &SitesLab,
    from: &str,
    subject: &str,
    id: &str,
    text: &str,
) -> serde_json::Value {
    let (subject, id, text) = (subject.to_owned(), id.to_owned(), text.to_owned());
    on_any_node(
        lab,
        from,
        move |c| {
            let reply = c.request(&subject, Some(&id), text.as_bytes())?;
            serde_json::from_slice(&reply).map_err(|e| NatsError::Server(e.to_string()))
        },
        |ack| ack["seq"].as_u64().is_some(),
    )
}

/// Sends a JetStream API request from host `from` to any node that answers
/// with a reply that has no `error` (bounded retries); the reply.
pub(crate) fn js_api_ok(
    lab: &SitesLab,
    from: &str,
    api: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let api = api.to_owned();
    on_any_node(
        lab,
        from,
        move |c| c.js_api(&api, &body),
        |reply| reply.get("error").is_none(),
    )
}

/// Runs `attempt` from host `from` on a fresh connection to each node in
/// turn until its reply is `accepted` (bounded by [`CLUSTER_WAIT`]).
fn on_any_node(
    lab: &SitesLab,
    from: &str,
    attempt: impl Fn(&mut NatsConn) -> Result<serde_json::Value, NatsError> + Send + 'static,
    accepted: fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    in_netns(&lab.ns(from), move || {
        let deadline = Instant::now() + CLUSTER_WAIT;
        let mut last = String::new();
        for node in NODES.iter().cycle() {
            if Instant::now() > deadline {
                break;
            }
            match NatsConn::connect(&format!("{node}:{CLIENT_PORT}"))
                .and_then(|mut c| attempt(&mut c))
            {
                Ok(v) if accepted(&v) => return Ok(v),
                Ok(v) => last = format!("{node}: {v}"),
                Err(e) => last = format!("{node}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(std::io::Error::other(format!("no accepted reply: {last}")))
    })
    .unwrap()
}

/// Stream `name`'s info as gateway B sees it, asked again (bounded) until
/// `done` holds for it (a restarted cluster takes a moment to catch up);
/// the last answer.
pub(crate) fn stream_info_until(
    lab: &SitesLab,
    name: &str,
    done: fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + CLUSTER_WAIT;
    loop {
        let info = js_api_ok(
            lab,
            "gwb",
            &format!("STREAM.INFO.{name}"),
            serde_json::json!({}),
        );
        if done(&info) || Instant::now() > deadline {
            return info;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether a TCP connection from lab host `from` to `to` succeeds.
fn connects(lab: &SitesLab, from: &str, to: &str) -> bool {
    let to: SocketAddr = to.parse().unwrap();
    in_netns(&lab.ns(from), move || {
        Ok(TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_ok())
    })
    .unwrap()
}

/// The lab itself: the sites are cut off from each other, only the gateways
/// reach the cluster, the cluster forms with JetStream, an R3 stream takes
/// writes from both gateways, stays writable with one node killed, and keeps
/// its messages (deduplicated) across a full restart of the cluster.
#[test]
fn sites_lab_forms_a_cluster_that_survives_a_node_and_a_restart() {
    if !sites_available() {
        return;
    }
    let mut lab = SitesLab::new("lab", &[("a1", 10)], &[("b1", 10)]);
    let (b1, nats) = (
        format!("{}:{CLIENT_PORT}", SITE_B.addr(10)),
        format!("{}:{CLIENT_PORT}", NODES[0]),
    );
    // Something listens at b1 (and on the node), so a failed connect is the
    // missing route, not a closed port.
    let b1_addr = b1.clone();
    let _listener = in_netns(&lab.ns("b1"), move || std::net::TcpListener::bind(b1_addr)).unwrap();
    assert!(connects(&lab, "b1", &b1), "the listener at b1 works");
    assert!(
        connects(&lab, "gwa", &nats),
        "gateway A reaches the cluster"
    );
    assert!(
        connects(&lab, "gwb", &nats),
        "gateway B reaches the cluster"
    );
    assert!(!connects(&lab, "a1", &b1), "site A reaches site B");
    assert!(!connects(&lab, "gwa", &b1), "gateway A routes into site B");
    assert!(
        !connects(&lab, "a1", &nats),
        "a site host reaches the backbone"
    );
    let routes = lab.exec("a1", &["ip", "route"], None);
    assert!(
        !String::from_utf8_lossy(&routes.stdout).contains("default"),
        "a site host has a default route"
    );

    let created = js_api_ok(
        &lab,
        "gwa",
        "STREAM.CREATE.LABTEST",
        serde_json::json!({
            "name": "LABTEST", "subjects": ["lab.>"], "storage": "file",
            "num_replicas": 3, "duplicate_window": 600_000_000_000u64
        }),
    );
    assert_eq!(created["config"]["num_replicas"], 3, "{created}");
    let first = publish_acked(&lab, "gwa", "lab.a", "a-1", "from site A");
    let second = publish_acked(&lab, "gwb", "lab.b", "b-1", "from site B");
    assert_eq!(first["stream"], "LABTEST");
    assert_ne!(first["seq"], second["seq"]);
    let again = publish_acked(&lab, "gwb", "lab.a", "a-1", "from site A");
    assert_eq!(again["duplicate"], true, "{again}");
    let info = stream_info_until(&lab, "LABTEST", |i| {
        i["cluster"]["replicas"].as_array().map(Vec::len) == Some(2)
    });
    assert_eq!(
        info["cluster"]["replicas"].as_array().map(Vec::len),
        Some(2),
        "a leader and two replicas: {info}"
    );

    // The stream leader's node dies; the other two keep it writable.
    let leader = info["cluster"]["leader"].as_str().unwrap().to_owned();
    let index = leader[1..].parse::<usize>().unwrap() - 1;
    lab.kill_node(index);
    let third = publish_acked(&lab, "gwa", "lab.a", "a-2", "while a node is down");
    assert!(third["seq"].as_u64() > second["seq"].as_u64(), "{third}");
    lab.start_node(index);
    lab.wait_cluster();

    // All three stop and start on the same stores: the messages are kept.
    lab.stop_all();
    lab.start_all();
    let info = stream_info_until(&lab, "LABTEST", |i| i["state"]["messages"] == 3);
    assert_eq!(info["state"]["messages"], 3, "{info}");
}
