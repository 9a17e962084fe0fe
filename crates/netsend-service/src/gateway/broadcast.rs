//! Broadcasts between sites: `*` and `/DOMAIN[:NAME]` broadcasts heard on
//! the LAN, or sent by this host, go to the backbone (which ones, and their
//! ids, is `netsend_proto::site_broadcast`'s decision); the durable
//! consumer `bcast-<SITE>` re-broadcasts the other sites' ones here.
//!
//! Heard broadcasts wait in a bounded spool while the cluster is away and
//! are published in order, each retried with its own id until JetStream
//! acknowledges it. A publication is acknowledged after its re-broadcast
//! left on every broadcast interface; its id goes into the seen bucket
//! first, so a redelivery is never re-broadcast twice.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::kv::{CreateErrorKind, Store};
use async_nats::jetstream::AckKind;
use bytes::Bytes;
use futures_lite::StreamExt as _;
use netsend_proto::display::LogSafe;
use netsend_proto::site_broadcast::{message_id, Received, SiteBroadcasts};
use netsend_proto::sites::{bcast_subject, SiteName};
use netsend_wire::name::suffix;
use netsend_wire::site_broadcast::SiteBroadcast;
use netsend_wire::NetbiosName;

use super::link::Link;
use crate::config::{Config, Live};
use crate::outbound::Outbound;
use crate::shutdown::Shutdown;

/// Largest number of broadcasts waiting for the cluster.
pub(crate) const MAX_SPOOL: usize = 256;
/// A spooled broadcast older than this (the stream's duplicate window) is
/// dropped: a publication after the window could be stored twice.
pub(crate) const MAX_SPOOL_AGE: Duration = Duration::from_secs(600);
/// The subject filter of the broadcast consumer (one filter: 2.9.10
/// ignores `filter_subjects`).
pub(crate) const BCAST_FILTER: &str = "netsend.bcast.>";
/// How long JetStream waits for our acknowledgement before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// Longest pause between two tries to publish or to consume.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The durable consumer of `site`'s gateway for broadcasts.
pub(crate) fn consumer_name(site: &SiteName) -> String {
    format!("bcast-{site}")
}

/// Why consuming stopped, to be tried again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsumeError {
    /// A JetStream call failed.
    #[error("{what}: {source}")]
    Nats {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        source: async_nats::Error,
    },
}

fn nats<E: Into<async_nats::Error>>(what: &'static str) -> impl FnOnce(E) -> ConsumeError {
    move |e| ConsumeError::Nats {
        what,
        source: e.into(),
    }
}

/// A publication waiting for the cluster.
struct Spooled {
    subject: String,
    id: String,
    payload: Bytes,
    at: Instant,
}

/// Broadcast counters since start.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Publications JetStream acknowledged.
    pub(crate) published: AtomicU64,
    /// Publications of other sites re-broadcast here.
    pub(crate) rebroadcast: AtomicU64,
    /// Publish tries and re-broadcasts that failed, and spooled broadcasts
    /// dropped.
    pub(crate) failed: AtomicU64,
}

/// The broadcast side of a site gateway. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Broadcasts {
    inner: Arc<Inner>,
}

struct Inner {
    site: SiteName,
    link: Link,
    outbound: Arc<Outbound>,
    config: Live<Config>,
    rule: Mutex<SiteBroadcasts>,
    spool: Mutex<VecDeque<Spooled>>,
    wake: tokio::sync::Notify,
    counters: Counters,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Broadcasts {
    /// The broadcasts of `site`, in `domains` (`[gateway] domains`, or the
    /// workgroup when empty), over `link`, re-broadcast through `outbound`.
    pub(crate) fn new(
        site: SiteName,
        link: Link,
        outbound: Arc<Outbound>,
        config: Live<Config>,
    ) -> Self {
        let c = config.get();
        let names: Vec<String> = match c.gateway.as_ref().map(|g| g.domains.clone()) {
            Some(d) if !d.is_empty() => d,
            _ => vec![c.workgroup.clone()],
        };
        let domains = names
            .iter()
            .filter_map(|d| NetbiosName::with_code_page(d, suffix::WORKSTATION, c.code_page).ok())
            .collect();
        let rule = SiteBroadcasts::new(site.as_str(), domains);
        Self {
            inner: Arc::new(Inner {
                site,
                link,
                outbound,
                config,
                rule: Mutex::new(rule),
                spool: Mutex::new(VecDeque::new()),
                wake: tokio::sync::Notify::new(),
                counters: Counters::default(),
            }),
        }
    }

    /// The counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// How many broadcasts wait for the cluster.
    pub(crate) fn spooled(&self) -> usize {
        self.inner.spool.lock().expect("spool lock").len()
    }

    /// Takes a datagram heard on the LAN from `peer` (`from_us`: one of
    /// our addresses): spools it for publication when the rule says so.
    pub(crate) fn heard(&self, datagram: &[u8], peer: Ipv4Addr, from_us: bool) {
        let code_page = self.inner.config.get().code_page;
        let verdict = self.inner.rule.lock().expect("rule lock").hear_datagram(
            datagram,
            peer,
            from_us,
            code_page,
            now_ms(),
        );
        match verdict {
            Some(Ok((b, id))) => self.spool(&b, id),
            Some(Err(why)) => {
                tracing::debug!(event = "gateway_broadcast", %peer, ?why, "heard broadcast not published")
            }
            None => {}
        }
    }

    /// Takes a broadcast this host sent to `domain` from `origin`: spools it
    /// for publication when `domain` is one of this site's.
    pub(crate) fn sent(&self, origin: Ipv4Addr, domain: &str, from: &str, text: &str) {
        let config = self.inner.config.get();
        let Ok(group) = NetbiosName::with_code_page(domain, suffix::WORKSTATION, config.code_page)
        else {
            return;
        };
        let source = self.inner.outbound.naming.datagram_source();
        let mut rule = self.inner.rule.lock().expect("rule lock");
        if !rule.is_our_domain(&group) {
            return;
        }
        let (b, id) = rule.sent(origin, group, source, from, text, now_ms());
        drop(rule);
        self.spool(&b, id);
    }

    fn spool(&self, b: &SiteBroadcast, id: String) {
        let payload = match b.to_bytes() {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                tracing::warn!(event = "gateway_broadcast", error = %LogSafe(&e), "broadcast not published: cannot encode it");
                return;
            }
        };
        let domain = b.domain.to_text(self.inner.config.get().code_page);
        let entry = Spooled {
            subject: bcast_subject(&domain),
            id,
            payload,
            at: Instant::now(),
        };
        let mut spool = self.inner.spool.lock().expect("spool lock");
        if spool.len() >= MAX_SPOOL {
            if let Some(old) = spool.pop_front() {
                self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(event = "gateway_broadcast", id = %old.id, "broadcast spool full: the oldest broadcast is dropped");
            }
        }
        spool.push_back(entry);
        drop(spool);
        self.inner.wake.notify_one();
    }

    /// Spawns the publisher and the consumer on `shutdown`'s tracker.
    pub(crate) fn spawn(&self, shutdown: &Shutdown) {
        let (this, stop) = (self.clone(), shutdown.clone());
        shutdown.spawn(async move { this.publish_loop(&stop).await });
        let (this, stop) = (self.clone(), shutdown.clone());
        shutdown.spawn(async move { this.consume_loop(&stop).await });
    }

    /// The oldest spooled broadcast, after dropping the expired ones.
    fn next(&self) -> Option<(String, String, Bytes)> {
        let mut spool = self.inner.spool.lock().expect("spool lock");
        while spool
            .front()
            .is_some_and(|s| s.at.elapsed() > MAX_SPOOL_AGE)
        {
            if let Some(old) = spool.pop_front() {
                self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(event = "gateway_broadcast", id = %old.id, "spooled broadcast dropped: older than the duplicate window");
            }
        }
        spool
            .front()
            .map(|s| (s.subject.clone(), s.id.clone(), s.payload.clone()))
    }

    async fn publish_loop(&self, shutdown: &Shutdown) {
        let mut backoff = Duration::from_millis(250);
        loop {
            let Some((subject, id, payload)) = self.next() else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.inner.wake.notified() => continue,
                }
            };
            if !self.inner.link.connected() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
            match self.inner.link.publish(subject, id.clone(), payload).await {
                Ok(ack) => {
                    backoff = Duration::from_millis(250);
                    let mut spool = self.inner.spool.lock().expect("spool lock");
                    if spool.front().is_some_and(|s| s.id == id) {
                        spool.pop_front();
                    }
                    drop(spool);
                    self.inner
                        .counters
                        .published
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(event = "gateway_broadcast", %id, seq = ack.sequence, duplicate = ack.duplicate, "broadcast published");
                }
                Err(e) => {
                    self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(event = "gateway_broadcast", %id, error = %LogSafe(&e), retry_in_ms = backoff.as_millis() as u64, "broadcast publish failed; retrying with the same id");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn consume_loop(&self, shutdown: &Shutdown) {
        let mut backoff = Duration::from_millis(500);
        loop {
            if shutdown.is_stopping() {
                return;
            }
            let Some(js) = self.inner.link.jetstream() else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            };
            match self.consume(&js, shutdown).await {
                Ok(()) => backoff = Duration::from_millis(500),
                Err(e) => {
                    tracing::warn!(event = "gateway_broadcast", consumer = %consumer_name(&self.inner.site), error = %LogSafe(&e), "broadcast consumer stopped; trying again");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Reads the broadcast consumer until it ends, fails or the service
    /// stops. A new consumer starts at new publications: a gateway that
    /// joins does not replay a day of broadcasts; a durable one resumes.
    async fn consume(
        &self,
        js: &async_nats::jetstream::Context,
        shutdown: &Shutdown,
    ) -> Result<(), ConsumeError> {
        let gw = self.inner.config.get().gateway.clone();
        let Some(gw) = gw else { return Ok(()) };
        let stream = js
            .get_stream(&gw.stream)
            .await
            .map_err(nats("get stream"))?;
        let name = consumer_name(&self.inner.site);
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    ack_policy: AckPolicy::Explicit,
                    deliver_policy: DeliverPolicy::New,
                    ack_wait: ACK_WAIT,
                    filter_subject: BCAST_FILTER.to_owned(),
                    ..Default::default()
                },
            )
            .await
            .map_err(nats("create consumer"))?;
        let seen = js.get_key_value(&gw.seen_bucket).await.ok();
        let mut messages = consumer.messages().await.map_err(nats("consume"))?;
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                m = messages.next() => m,
            };
            match next {
                None => return Ok(()),
                Some(Err(e)) => return Err(nats("next message")(e)),
                Some(Ok(message)) => self.take(message, seen.as_ref()).await,
            }
        }
    }

    /// Re-broadcasts one publication when the rule says so, then
    /// acknowledges it.
    async fn take(&self, message: async_nats::jetstream::Message, seen: Option<&Store>) {
        let b = match SiteBroadcast::parse(&message.payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(event = "gateway_broadcast", error = %LogSafe(&e), "malformed broadcast publication dropped");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| message_id(&b));
        let (verdict, domain) = {
            let mut rule = self.inner.rule.lock().expect("rule lock");
            (rule.receive(&b, &id, now_ms()), rule.our_domain(&b.domain))
        };
        match (verdict, domain) {
            (Received::Rebroadcast, Some(domain)) if self.claim(seen, &id).await => {
                self.rebroadcast(&b, domain, &id).await;
            }
            (Received::Skip(why), _) => {
                tracing::debug!(event = "gateway_broadcast", id = %LogSafe(&id), why = why.as_str(), "publication not re-broadcast here");
            }
            _ => {
                tracing::debug!(event = "gateway_broadcast", id = %LogSafe(&id), "publication re-broadcast already");
            }
        }
        if let Err(e) = message.double_ack().await {
            tracing::warn!(event = "gateway_broadcast", id = %LogSafe(&id), error = %LogSafe(&e), "cannot acknowledge a broadcast; it comes again");
        }
    }

    /// Records `id` as re-broadcast here in the seen bucket; false when it
    /// was already (a redelivery after a restart). Without the bucket, the
    /// in-memory record alone decides.
    async fn claim(&self, seen: Option<&Store>, id: &str) -> bool {
        let Some(kv) = seen else { return true };
        let key = format!("{}.{id}", self.inner.site);
        match kv.create(&key, Bytes::from_static(b"1")).await {
            Ok(_) => true,
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => false,
            Err(e) => {
                tracing::warn!(event = "gateway_broadcast", id = %LogSafe(id), error = %LogSafe(&e), "cannot record a re-broadcast; re-broadcasting anyway");
                true
            }
        }
    }

    async fn rebroadcast(&self, b: &SiteBroadcast, domain: NetbiosName, id: &str) {
        let sent = crate::outbound::datagrams::broadcast_as(
            &self.inner.outbound,
            domain,
            b.source,
            &b.from,
            &b.text,
            true,
        )
        .await;
        let lag_ms = now_ms().saturating_sub(b.sent_at_ms);
        match sent {
            Ok(datagrams) => {
                self.inner
                    .counters
                    .rebroadcast
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(event = "gateway_broadcast", id = %LogSafe(id), site = %LogSafe(&b.site), from = %LogSafe(&b.from), datagrams, lag_ms, "broadcast of another site re-broadcast");
            }
            Err(e) => {
                self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(event = "gateway_broadcast", id = %LogSafe(id), site = %LogSafe(&b.site), error = %LogSafe(&e), lag_ms, "re-broadcast failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Broadcasts between two sites through a real `nats-server -js` on
    //! loopback: each site's re-broadcasts go to a UDP socket of the test,
    //! standing in for its LAN's broadcast address.

    use std::net::{Ipv4Addr, UdpSocket};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use netsend_proto::interface::Interface;
    use netsend_proto::mailslot::{self, Addressed};
    use netsend_wire::oem::CodePage;

    use super::*;
    use crate::admission::drops::Drops;
    use crate::admission::Admission;
    use crate::gateway::tests::{config as gateway_config, connected, NatsServer};
    use crate::naming::aliases::AliasTable;
    use crate::naming::registrar::Registrar;
    use crate::naming::Naming;
    use crate::system::host::Host;

    /// One site: its configuration, link, broadcasts and the socket its
    /// re-broadcasts arrive at.
    struct Site {
        gateway: crate::gateway::Gateway,
        lan: UdpSocket,
        shutdown: Shutdown,
        _dir: tempfile::TempDir,
    }

    fn site(name: &str, url: &str, domains: &[&str]) -> Site {
        let lan = UdpSocket::bind("127.0.0.1:0").unwrap();
        lan.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut config = Config {
            computer_name: format!("GW{name}"),
            ..Config::default()
        };
        config.network.datagram_port = lan.local_addr().unwrap().port();
        let mut gw = gateway_config(name, url);
        gw.domains = domains.iter().map(|d| (*d).to_owned()).collect();
        config.gateway = Some(gw.clone());
        let dir = tempfile::tempdir().unwrap();
        let aliases =
            AliasTable::load(&config.computer_name, dir.path(), config.code_page).unwrap();
        let drops = Arc::new(Drops::default());
        let host = Arc::new(Host {
            interfaces: vec![Interface {
                address: Ipv4Addr::LOCALHOST,
                broadcast: Some(Ipv4Addr::LOCALHOST),
                netmask: Some(Ipv4Addr::new(255, 0, 0, 0)),
                mac: [0; 6],
            }],
            session_addresses: Vec::new(),
            name_addresses: Vec::new(),
            remote_addresses: Vec::new(),
            remote_key: None,
        });
        let admission = Arc::new(Admission::for_tests(&config, drops.clone(), host.clone()));
        let naming = Arc::new(Naming {
            aliases: Arc::new(Mutex::new(aliases)),
            registrar: Arc::new(Registrar::new(
                &[],
                config.network.name_port,
                None,
                config.names.registration(),
                drops.clone(),
            )),
        });
        let live = Live::new(config);
        let outbound = Arc::new(Outbound {
            metrics: Arc::new(crate::metrics::Metrics::new(drops.family())),
            config: live.clone(),
            host,
            admission,
            naming,
            name_cache: Mutex::default(),
            verified: None,
            backbone: std::sync::OnceLock::new(),
            wins: std::sync::OnceLock::new(),
        });
        let inbox = crate::store::Inbox::open(&dir.path().join("inbox.db"), 0).unwrap();
        let gateway =
            crate::gateway::Gateway::new(&gw, outbound.clone(), inbox, outbound.metrics.clone())
                .unwrap();
        let shutdown = Shutdown::new();
        gateway.run(&shutdown);
        Site {
            gateway,
            lan,
            shutdown,
            _dir: dir,
        }
    }

    /// A re-broadcast as seen on a LAN: source name, sender, text.
    type Seen = (String, String, String);

    /// The MESSNGR broadcasts that reach `site`'s LAN, with their
    /// datagrams: read until `expect` came (at most 60 s: twice the
    /// consumer's ack wait, after which a lost delivery comes again) and
    /// then one second more, so a duplicate would show.
    async fn heard(site: &Site, expect: usize) -> Vec<(Seen, Vec<u8>)> {
        let lan = site.lan.try_clone().unwrap();
        tokio::task::spawn_blocking(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 1500];
            let mut quiet = 0;
            for _ in 0..300 {
                if got.len() >= expect {
                    quiet += 1;
                    if quiet > 5 {
                        break;
                    }
                }
                let Ok((len, _)) = lan.recv_from(&mut buf) else {
                    continue;
                };
                let bytes = buf[..len].to_vec();
                let d = mailslot::MailslotDatagram::parse(&bytes).unwrap();
                let r =
                    mailslot::receive(&bytes, &d.destination, &|_| false, CodePage::Cp850).unwrap();
                assert_eq!(r.addressed, Addressed::Broadcast);
                let what = (
                    d.source.to_text(CodePage::Cp850),
                    r.message.from,
                    r.message.text,
                );
                got.push((what, bytes));
            }
            got
        })
        .await
        .unwrap()
    }

    fn texts(got: &[(Seen, Vec<u8>)]) -> Vec<Seen> {
        got.iter().map(|(w, _)| w.clone()).collect()
    }

    fn owned(source: &str, from: &str, text: &str) -> Seen {
        (source.to_owned(), from.to_owned(), text.to_owned())
    }

    /// Waits (bounded) until `site`'s consumer exists, so that a
    /// publication after it is delivered to it (it starts at new ones).
    async fn consuming(site: &Site, name: &str) {
        for _ in 0..400 {
            if let Some(js) = site.gateway.link.jetstream() {
                if let Ok(stream) = js.get_stream("NETSEND").await {
                    if stream.consumer_info(name).await.is_ok() {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("consumer {name} did not appear");
    }

    async fn published(site: &Site, n: u64) {
        for _ in 0..400 {
            if site
                .gateway
                .broadcasts
                .counters()
                .published
                .load(Ordering::Relaxed)
                >= n
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("not published");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broadcast_is_rebroadcast_once_at_the_other_sites_of_its_domain_and_never_back() {
        let Some(server) = NatsServer::start() else {
            return;
        };
        let north = site("NORTH", &server.url, &["CORP"]);
        let south = site("SOUTH", &server.url, &["CORP", "SALES"]);
        let east = site("EAST", &server.url, &["HR"]);
        for s in [&north, &south, &east] {
            connected(&s.gateway.link).await;
        }
        consuming(&north, "bcast-NORTH").await;
        consuming(&south, "bcast-SOUTH").await;
        consuming(&east, "bcast-EAST").await;

        // NORTH's host sends /DOMAIN:CORP; SOUTH (in CORP) re-broadcasts it
        // once with the original source and sender; NORTH does not take its
        // own publication back, EAST (only in HR) does not re-broadcast it.
        north
            .gateway
            .broadcasts
            .sent(Ipv4Addr::LOCALHOST, "CORP", "alice", "fire drill at 3");
        // A domain that is not NORTH's is not published.
        north
            .gateway
            .broadcasts
            .sent(Ipv4Addr::LOCALHOST, "SALES", "bob", "not NORTH's domain");
        published(&north, 1).await;
        let at_south = heard(&south, 1).await;
        assert_eq!(
            texts(&at_south),
            [owned("GWNORTH", "alice", "fire drill at 3")]
        );
        assert_eq!(texts(&heard(&north, 0).await), []);
        assert_eq!(texts(&heard(&east, 0).await), []);
        assert_eq!(
            south
                .gateway
                .broadcasts
                .counters()
                .rebroadcast
                .load(Ordering::Relaxed),
            1
        );
        assert_eq!(
            north
                .gateway
                .broadcasts
                .counters()
                .published
                .load(Ordering::Relaxed),
            1
        );

        // SOUTH's re-broadcast heard back on its LAN, from its own address
        // or passed on by a relay, is not published again.
        let echo = &at_south[0].1;
        south
            .gateway
            .broadcasts
            .heard(echo, Ipv4Addr::LOCALHOST, true);
        south
            .gateway
            .broadcasts
            .heard(echo, Ipv4Addr::new(192, 0, 2, 99), false);
        assert_eq!(south.gateway.broadcasts.spooled(), 0);

        // A broadcast a host on SOUTH's LAN sends to SALES is published and
        // reaches no site but... none other is in SALES; one to CORP from
        // that host reaches NORTH once.
        let host = Interface {
            address: Ipv4Addr::new(192, 0, 2, 70),
            broadcast: Some(Ipv4Addr::new(192, 0, 2, 127)),
            netmask: Some(Ipv4Addr::new(255, 255, 255, 192)),
            mac: [0; 6],
        };
        let datagram = |domain: &str, text: &str| {
            let message = netsend_proto::broadcast::Broadcast {
                domain: NetbiosName::new(domain, 0).unwrap(),
                source: NetbiosName::new("PCSOUTH", 0).unwrap(),
                from: "carol",
                text,
                split: false,
                code_page: CodePage::Cp850,
            };
            let targets = netsend_proto::broadcast::Targets {
                interfaces: std::slice::from_ref(&host),
                extra: &[],
                relays: &[],
                port: 138,
            };
            netsend_proto::broadcast::datagrams(&message, &targets, 7)
                .unwrap()
                .remove(0)
                .bytes
        };
        let lunch = datagram("CORP", "lunch is served");
        south.gateway.broadcasts.heard(&lunch, host.address, false);
        // Heard on a second interface: published once all the same.
        south.gateway.broadcasts.heard(&lunch, host.address, false);
        south
            .gateway
            .broadcasts
            .heard(&datagram("SALES", "sales meeting"), host.address, false);
        published(&south, 2).await;
        assert_eq!(
            texts(&heard(&north, 1).await),
            [owned("PCSOUTH", "carol", "lunch is served")]
        );
        assert_eq!(texts(&heard(&east, 0).await), []);
        assert_eq!(texts(&heard(&south, 0).await), []);

        // A restarted SOUTH resumes its durable consumer and re-broadcasts
        // nothing twice; what comes after it went away arrives once (at
        // the latest when a pull request of the old one left unanswered
        // reaches its ack wait and the publication is redelivered).
        south.shutdown.finish().await;
        drop(south);
        north
            .gateway
            .broadcasts
            .sent(Ipv4Addr::LOCALHOST, "CORP", "alice", "while SOUTH was away");
        published(&north, 2).await;
        let south = site("SOUTH", &server.url, &["CORP", "SALES"]);
        connected(&south.gateway.link).await;
        assert_eq!(
            texts(&heard(&south, 1).await),
            [owned("GWNORTH", "alice", "while SOUTH was away")]
        );
        let js = south.gateway.link.jetstream().unwrap();
        let info = js
            .get_stream("NETSEND")
            .await
            .unwrap()
            .consumer_info("bcast-SOUTH")
            .await
            .unwrap();
        assert_eq!(info.config.filter_subject, BCAST_FILTER);
        assert_eq!(info.num_ack_pending, 0);

        // `gateway status` reads the same from JetStream.
        let remote = crate::gateway::directory::RemoteName {
            site: SiteName::new("NORTH").unwrap(),
            address: Ipv4Addr::new(192, 0, 2, 10),
            gateway: Ipv4Addr::new(192, 0, 2, 1),
        };
        south
            .gateway
            .directory
            .upsert(NetbiosName::new("ALICE", 3).unwrap(), remote);
        let config = gateway_config("SOUTH", &server.url);
        let state = crate::gateway::status::state(&south.gateway, &config).await;
        assert_eq!(
            (state.site.as_str(), state.mode.as_str()),
            ("SOUTH", "proxy")
        );
        assert!(state.connection.connected);
        assert!(state.connection.since.is_some());
        let port = server.url.rsplit(':').next().unwrap();
        assert!(
            state
                .connection
                .server
                .as_deref()
                .unwrap()
                .starts_with(&format!("127.0.0.1:{port} (")),
            "{:?}",
            state.connection.server
        );
        let stream = state.stream.unwrap();
        assert_eq!((stream.name.as_str(), stream.replicas), ("NETSEND", 1));
        assert_eq!(stream.messages, 4, "four broadcasts were published");
        assert!(stream.bytes > 0);
        let names: Vec<&str> = state.consumers.iter().map(|c| c.name.as_str()).collect();
        // This site's three consumers: broadcasts, receipts, messages.
        assert_eq!(names, ["bcast-SOUTH", "receipts-SOUTH", "site-SOUTH"]);
        assert!(state.consumers.iter().all(|c| c.num_pending == 0));
        assert_eq!(state.directory.names, 1);
        assert_eq!(state.directory.sites[0].site, "NORTH");
        assert_eq!(state.counters.delivered, 1);
        assert_eq!(state.counters.spooled, 0);

        // With the cluster gone: disconnected, since when, and why; a
        // heard broadcast waits in the spool.
        drop(server);
        for _ in 0..400 {
            if !south.gateway.link.connected() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        south.gateway.broadcasts.heard(
            &datagram("CORP", "while the cluster is down"),
            host.address,
            false,
        );
        let state = crate::gateway::status::state(&south.gateway, &config).await;
        assert!(!state.connection.connected);
        assert!(
            state.connection.last_error.is_some(),
            "{:?}",
            state.connection
        );
        assert_eq!(state.stream, None);
        assert_eq!(state.counters.spooled, 1);
        for s in [north, south, east] {
            s.shutdown.request();
        }
    }
}
