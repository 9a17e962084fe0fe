//! The name directory between sites, driven: this site's names go into the
//! KV bucket (`[gateway] names_bucket`), the other sites' names come out of
//! it into the gateway's [`Directory`], and queries for them are answered
//! by the rules of `netsend_proto::directory`. Reconnect-safe: after every
//! (re)connect every name is written again and the bucket read afresh.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::kv::{Operation, Store};
use futures_lite::StreamExt as _;
use netsend_proto::directory::{
    self, AnswerMode, Change, DirectoryEntry, Holder, LocalName, Mirror, MirrorChange, Publisher,
};
use netsend_proto::display::LogSafe;
use netsend_proto::sites::{name_from_key, name_key, SiteName};
use netsend_wire::nbns::Packet;
use netsend_wire::NetbiosName;

use super::directory::{Directory, RemoteName};
use super::link::{Link, NAMES_MAX_AGE};
use crate::config::{GatewayConfig, GatewayMode};
use crate::naming::aliases::AliasTable;
use crate::shutdown::Shutdown;
use crate::wins::WinsServer;

/// Names one site may have in the directory; more are left out (at the
/// publishing site and at every reader).
pub(crate) const MAX_NAMES_PER_SITE: usize = 2048;
/// Names of all other sites together a gateway keeps.
pub(crate) const MAX_NAMES_TOTAL: usize = 16_384;
/// How often local names are compared with what was published, and lapsed
/// remote entries forgotten.
const TICK: Duration = Duration::from_secs(5);
/// The pause before trying again after the bucket failed.
const RETRY: Duration = Duration::from_secs(2);
/// The longest one bucket operation may take before the round is abandoned.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// What `gateway status` shows of the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DirectoryState {
    /// Names known per other site.
    pub(crate) sites: Vec<(SiteName, usize)>,
    /// This site's names in the bucket.
    pub(crate) published: usize,
    /// This site's names left out over the cap.
    pub(crate) left_out: usize,
    /// This site's names another site held first.
    pub(crate) conflicts: usize,
    /// Entries of other sites not believed (unreadable, lapsed, over a cap).
    pub(crate) refused: u64,
    /// When the directory was last brought up to date with the bucket.
    pub(crate) last_sync: Option<SystemTime>,
    /// The last failure, and when (cleared by the next good round).
    pub(crate) last_error: Option<(SystemTime, String)>,
}

/// Why a round with the bucket failed (the task reconnects and resyncs).
#[derive(Debug, thiserror::Error)]
pub(crate) enum NamesError {
    /// The NATS connection is down.
    #[error("not connected to NATS")]
    Disconnected,
    /// The bucket could not be opened.
    #[error("opening the names bucket: {0}")]
    Open(#[from] async_nats::jetstream::context::KeyValueError),
    /// The watch could not be started or ended.
    #[error("watching the names bucket: {0}")]
    Watch(String),
    /// Reading or writing an entry failed.
    #[error("names bucket: {0}")]
    Entry(String),
    /// A bucket operation took longer than its bound.
    #[error("names bucket operation timed out")]
    Timeout,
}

/// Where this site's names come from: the gateway host's own aliases and
/// the local WINS server's table.
#[derive(Clone)]
pub(crate) struct LocalNames {
    /// The gateway host's alias table.
    pub(crate) aliases: Arc<Mutex<AliasTable>>,
    /// The local WINS server, when this host runs one.
    pub(crate) wins: Option<WinsServer>,
    /// The gateway host's address on its site LAN.
    pub(crate) address: Ipv4Addr,
}

impl LocalNames {
    /// The names this site publishes now: every alias `<03>` of the gateway
    /// host (its computer name included), and the unique `<03>`, `<00>` and
    /// `<20>` names in the WINS table.
    fn collect(&self) -> Vec<LocalName> {
        let mut names: Vec<LocalName> = {
            let aliases = self.aliases.lock().expect("alias table lock");
            aliases
                .names()
                .map(|name| LocalName {
                    name,
                    owner: self.address,
                })
                .collect()
        };
        if let Some(wins) = &self.wins {
            names.extend(wins.active_names().into_iter().filter_map(|w| {
                let owner = *w.addresses.first()?;
                directory::is_published(&w.name, w.group).then_some(LocalName {
                    name: w.name,
                    owner,
                })
            }));
        }
        names
    }
}

/// Whether the local WINS server (if any) answers for `name`.
pub(crate) fn in_wins(wins: Option<&WinsServer>, name: &NetbiosName) -> bool {
    wins.is_some_and(|w| w.active_names().iter().any(|n| n.name == *name))
}

/// The directory's driver and the answers it gives, shared by the sync
/// task, the name service driver and the WINS server's fallback.
#[derive(Clone)]
pub(crate) struct Names {
    inner: Arc<Inner>,
}

struct Inner {
    site: SiteName,
    bucket: String,
    mode: AnswerMode,
    directory: Directory,
    state: Mutex<DirectoryState>,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn max_age_ms() -> i64 {
    i64::try_from(NAMES_MAX_AGE.as_millis()).unwrap_or(i64::MAX)
}

impl Names {
    /// The directory driver of the gateway `config` describes.
    pub(crate) fn new(config: &GatewayConfig, site: SiteName, directory: Directory) -> Self {
        Self {
            inner: Arc::new(Inner {
                site,
                bucket: config.names_bucket.clone(),
                mode: match config.mode {
                    GatewayMode::Proxy => AnswerMode::Proxy,
                    GatewayMode::Direct => AnswerMode::Direct,
                },
                directory,
                state: Mutex::new(DirectoryState::default()),
            }),
        }
    }

    /// What `gateway status` shows.
    pub(crate) fn state(&self) -> DirectoryState {
        let mut state = self
            .inner
            .state
            .lock()
            .expect("directory state lock")
            .clone();
        state.sites = self.inner.directory.sites();
        state
    }

    fn note(&self, f: impl FnOnce(&mut DirectoryState)) {
        f(&mut self.inner.state.lock().expect("directory state lock"));
    }

    /// The address a query for `name` that came in on `arrival` gets, when
    /// another site holds it and neither this host (`own`) nor the local
    /// WINS server (`in_local_wins`) does: those answer for themselves.
    fn remote_address(
        &self,
        name: &NetbiosName,
        own: bool,
        in_local_wins: impl Fn(&NetbiosName) -> bool,
        arrival: Ipv4Addr,
    ) -> Option<Ipv4Addr> {
        let remote = self.inner.directory.lookup(name);
        // Asked only when another site holds it: the WINS table is larger.
        let local_wins = remote.is_some() && in_local_wins(name);
        match directory::holder(own, local_wins, remote.map(|r| r.address)) {
            Holder::Remote { owner } => {
                Some(directory::answer_address(self.inner.mode, owner, arrival))
            }
            Holder::Own | Holder::LocalWins | Holder::Unknown => None,
        }
    }

    /// The answer to a broadcast name query heard on the site LAN (at the
    /// interface with address `arrival`) that the responder left
    /// unanswered (not our name), for a name another site holds.
    pub(crate) fn answer_broadcast(
        &self,
        request: &Packet,
        arrival: Ipv4Addr,
        in_local_wins: impl Fn(&NetbiosName) -> bool,
    ) -> Option<Packet> {
        if !request.flags.broadcast {
            return None;
        }
        let name = directory::queried_name(request)?;
        let address = self.remote_address(&name, false, in_local_wins, arrival)?;
        tracing::debug!(name = %LogSafe(&name), %address, "answered a query for a remote name");
        directory::remote_answer(request, address)
    }

    /// The WINS server's fallback, asked for names its table lacks: the
    /// address a unicast query for a remote name gets (in proxy mode
    /// `address`, this gateway's site address).
    pub(crate) fn wins_fallback(&self, address: Ipv4Addr) -> crate::wins::Fallback {
        let names = self.clone();
        Arc::new(move |name: &NetbiosName| {
            let address = names.remote_address(name, false, |_| false, address)?;
            Some(vec![address])
        })
    }

    /// Keeps the bucket and the directory in step until shutdown.
    pub(crate) async fn run(self, link: Link, local: LocalNames, shutdown: Shutdown) {
        let max_age = max_age_ms();
        let mut publisher = Publisher::new(
            self.inner.site.clone(),
            local.address,
            max_age,
            MAX_NAMES_PER_SITE,
        );
        let mut mirror = Mirror::new(
            self.inner.site.clone(),
            max_age,
            MAX_NAMES_PER_SITE,
            MAX_NAMES_TOTAL,
        );
        loop {
            let outcome = match link.jetstream() {
                Some(js) => tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = self.session(&link, js, &local, &mut publisher, &mut mirror) => r,
                },
                None => Err(NamesError::Disconnected),
            };
            if let Err(e) = outcome {
                let first = self
                    .inner
                    .state
                    .lock()
                    .expect("directory state lock")
                    .last_error
                    .is_none();
                if first {
                    tracing::warn!(error = %LogSafe(&e), "name directory not in step with the cluster; trying again");
                } else {
                    tracing::debug!(error = %LogSafe(&e), "name directory round failed");
                }
                self.note(|s| s.last_error = Some((SystemTime::now(), e.to_string())));
            }
            publisher.reset();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    /// One connected stretch: open the bucket, watch it, read it afresh,
    /// then publish and follow changes until something fails.
    async fn session(
        &self,
        link: &Link,
        js: async_nats::jetstream::Context,
        local: &LocalNames,
        publisher: &mut Publisher,
        mirror: &mut Mirror,
    ) -> Result<(), NamesError> {
        let kv = bounded(js.get_key_value(self.inner.bucket.clone())).await??;
        let mut watch = bounded(kv.watch_all())
            .await?
            .map_err(|e| NamesError::Watch(e.to_string()))?;
        let snapshot = self.snapshot(&kv).await?;
        let now = unix_ms(SystemTime::now());
        self.apply(mirror.resync(&snapshot, now));
        self.note(|s| {
            s.last_sync = Some(SystemTime::now());
            s.refused = mirror.refused();
        });
        tracing::info!(names = mirror.len(), "name directory read from the cluster");
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                change = watch.next() => {
                    let entry = match change {
                        Some(Ok(entry)) => entry,
                        Some(Err(e)) => return Err(NamesError::Watch(e.to_string())),
                        None => return Err(NamesError::Watch("the watch ended".into())),
                    };
                    let Some(name) = name_from_key(&entry.key).ok() else {
                        continue;
                    };
                    let now = unix_ms(SystemTime::now());
                    let change = match entry.operation {
                        Operation::Put => mirror.put(name, entry.revision, &entry.value, now),
                        Operation::Delete | Operation::Purge => mirror.delete(name, entry.revision),
                    };
                    self.apply(change);
                    self.note(|s| {
                        s.last_sync = Some(SystemTime::now());
                        s.refused = mirror.refused();
                    });
                }
                _ = tick.tick() => {
                    if !link.connected() {
                        return Err(NamesError::Disconnected);
                    }
                    self.apply(mirror.expire(unix_ms(SystemTime::now())));
                    self.publish(&kv, local, publisher).await?;
                }
            }
        }
    }

    /// Every entry in the bucket now, at most as many as the directory can
    /// hold and this site's own.
    async fn snapshot(&self, kv: &Store) -> Result<Vec<(NetbiosName, u64, Vec<u8>)>, NamesError> {
        let mut keys = bounded(kv.keys())
            .await?
            .map_err(|e| NamesError::Entry(e.to_string()))?;
        let mut names = Vec::new();
        while let Some(key) = bounded(keys.next()).await? {
            let key = key.map_err(|e| NamesError::Entry(e.to_string()))?;
            if let Ok(name) = name_from_key(&key) {
                names.push((name, key));
            }
            if names.len() >= MAX_NAMES_TOTAL + MAX_NAMES_PER_SITE {
                break;
            }
        }
        let mut snapshot = Vec::with_capacity(names.len());
        for (name, key) in names {
            let entry = bounded(kv.entry(key))
                .await?
                .map_err(|e| NamesError::Entry(e.to_string()))?;
            if let Some(e) = entry.filter(|e| e.operation == Operation::Put) {
                snapshot.push((name, e.revision, e.value.to_vec()));
            }
        }
        Ok(snapshot)
    }

    fn apply(&self, changes: impl IntoIterator<Item = MirrorChange>) {
        for change in changes {
            match change {
                MirrorChange::Upsert(name, entry) => self.inner.directory.upsert(
                    name,
                    RemoteName {
                        site: entry.site,
                        address: entry.owner,
                        gateway: entry.gateway,
                    },
                ),
                MirrorChange::Remove(name) => self.inner.directory.remove(&name),
            }
        }
    }

    /// Writes the changes due for this site's names: new, moved and due
    /// names put where the key is free or ours, gone names deleted where
    /// the key is still ours.
    async fn publish(
        &self,
        kv: &Store,
        local: &LocalNames,
        publisher: &mut Publisher,
    ) -> Result<(), NamesError> {
        let now = SystemTime::now();
        let now_ms = unix_ms(now);
        let changes = publisher.plan(now_ms, &local.collect());
        for change in changes {
            match change {
                Change::Put(name, entry) => self.put(kv, publisher, name, entry, now_ms).await?,
                Change::Delete(name) => {
                    let key = name_key(&name);
                    let current = entry_at(kv, &key).await?;
                    let ours = current.filter(|(_, held)| {
                        held.as_ref().is_some_and(|d| d.site == self.inner.site)
                    });
                    if let Some((revision, _)) = ours {
                        bounded(kv.delete_expect_revision(key, Some(revision)))
                            .await?
                            .map_err(|e| NamesError::Entry(e.to_string()))?;
                    }
                    publisher.deleted(&name);
                }
            }
        }
        self.note(|s| {
            s.published = publisher.published();
            s.left_out = publisher.left_out();
            s.conflicts = publisher.conflicts();
            s.last_error = None;
        });
        Ok(())
    }

    /// Writes `entry` for `name` if the key is free, ours, or lapsed.
    async fn put(
        &self,
        kv: &Store,
        publisher: &mut Publisher,
        name: NetbiosName,
        entry: DirectoryEntry,
        now_ms: i64,
    ) -> Result<(), NamesError> {
        let key = name_key(&name);
        let current = entry_at(kv, &key).await?;
        let held = current.as_ref().and_then(|(_, held)| held.clone());
        if !directory::may_claim(held.as_ref(), &self.inner.site, now_ms, max_age_ms()) {
            if let Some(other) =
                held.filter(|_| publisher.held_elsewhere(name, entry.owner, now_ms))
            {
                tracing::warn!(name = %LogSafe(&name), site = %LogSafe(&other.site), "name held at another site first; not published");
            }
            return Ok(());
        }
        let value = entry.to_bytes().into();
        let written = match current {
            Some((revision, _)) => bounded(kv.update(key, value, revision))
                .await?
                .map(drop)
                .map_err(|e| e.to_string()),
            None => bounded(kv.create(key, value))
                .await?
                .map(drop)
                .map_err(|e| e.to_string()),
        };
        match written {
            Ok(()) => publisher.written(name, entry.owner, now_ms),
            // Another site wrote the key meanwhile: the next round reads it.
            Err(e) => {
                tracing::debug!(name = %LogSafe(&name), error = %LogSafe(&e), "name not published this round")
            }
        }
        Ok(())
    }
}

/// The key's last revision and what it holds (None inside: a value that is
/// not a readable entry), or None when absent or deleted.
async fn entry_at(
    kv: &Store,
    key: &str,
) -> Result<Option<(u64, Option<DirectoryEntry>)>, NamesError> {
    let entry = bounded(kv.entry(key.to_owned()))
        .await?
        .map_err(|e| NamesError::Entry(e.to_string()))?;
    Ok(entry
        .filter(|e| e.operation == Operation::Put)
        .map(|e| (e.revision, DirectoryEntry::parse(&e.value).ok())))
}

/// Runs one bucket operation with [`OP_TIMEOUT`].
async fn bounded<F: std::future::Future>(f: F) -> Result<F::Output, NamesError> {
    tokio::time::timeout(OP_TIMEOUT, f)
        .await
        .map_err(|_| NamesError::Timeout)
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use netsend_wire::CodePage;

    use super::super::tests::{config, connected, NatsServer};
    use super::*;

    /// One site's gateway: its link, names, directory and alias table.
    struct Site {
        link: Link,
        names: Names,
        directory: Directory,
        aliases: Arc<Mutex<AliasTable>>,
        _state: tempfile::TempDir,
    }

    fn site(name: &str, computer: &str, url: &str, address: Ipv4Addr, shutdown: &Shutdown) -> Site {
        let config = config(name, url);
        let state = tempfile::tempdir().unwrap();
        let aliases = Arc::new(Mutex::new(
            AliasTable::load(computer, state.path(), CodePage::Cp850).unwrap(),
        ));
        let link = Link::new(config.clone());
        let directory = Directory::default();
        let names = Names::new(&config, config.site_name().unwrap(), directory.clone());
        shutdown.spawn(link.clone().run(shutdown.clone()));
        let local = LocalNames {
            aliases: aliases.clone(),
            wins: None,
            address,
        };
        shutdown.spawn(names.clone().run(link.clone(), local, shutdown.clone()));
        Site {
            link,
            names,
            directory,
            aliases,
            _state: state,
        }
    }

    fn name(text: &str) -> NetbiosName {
        NetbiosName::new(text, 0x03).unwrap()
    }

    /// Waits (at most 30 s: a few publishing rounds) until `done` holds.
    async fn until<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
        for _ in 0..300 {
            if done().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("not within 30 s: {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_sites_see_each_others_names_and_a_removed_one_goes() {
        let Some(server) = NatsServer::start() else {
            return;
        };
        let shutdown = Shutdown::new();
        let north_gw = Ipv4Addr::new(192, 0, 2, 1);
        let south_gw = Ipv4Addr::new(198, 51, 100, 1);
        let north = site("north", "NHOST", &server.url, north_gw, &shutdown);
        let south = site("south", "SHOST", &server.url, south_gw, &shutdown);
        connected(&north.link).await;
        connected(&south.link).await;

        let expect_shost = RemoteName {
            site: SiteName::new("SOUTH").unwrap(),
            address: south_gw,
            gateway: south_gw,
        };
        until("north sees SHOST", || async {
            north.directory.lookup(&name("SHOST")) == Some(expect_shost.clone())
        })
        .await;
        until("south sees NHOST", || async {
            south
                .directory
                .lookup(&name("NHOST"))
                .is_some_and(|r| r.address == north_gw)
        })
        .await;
        // Own names are never in one's own directory.
        assert_eq!(north.directory.lookup(&name("NHOST")), None);
        let state = north.names.state();
        assert_eq!(state.sites, [(SiteName::new("SOUTH").unwrap(), 1)]);
        assert_eq!(state.published, 1);
        assert!(state.last_sync.is_some() && state.last_error.is_none());

        // A broadcast query at the north for SHOST is answered with the
        // north gateway's address (proxy mode); a query for a name nobody
        // holds, or for our own (the responder's), is not.
        let query = Packet::name_query(7, name("SHOST"), true);
        let reply = north
            .names
            .answer_broadcast(&query, north_gw, |_| false)
            .unwrap();
        let reply = Packet::parse(&reply.to_bytes().unwrap()).unwrap();
        assert!(format!("{:?}", reply.answers[0].rdata).contains("192.0.2.1"));
        assert!(north
            .names
            .answer_broadcast(&query, north_gw, |_| true)
            .is_none());
        let nobody = Packet::name_query(8, name("NOBODY"), true);
        assert!(north
            .names
            .answer_broadcast(&nobody, north_gw, |_| false)
            .is_none());
        let unicast = Packet::name_query(9, name("SHOST"), false);
        assert!(north
            .names
            .answer_broadcast(&unicast, north_gw, |_| false)
            .is_none());
        assert_eq!(
            (north.names.wins_fallback(north_gw))(&name("SHOST")),
            Some(vec![north_gw])
        );

        // An alias added at the south appears at the north; deleted, it goes.
        south
            .aliases
            .lock()
            .unwrap()
            .add("ALICE", None, true)
            .unwrap();
        until("north sees ALICE", || async {
            north.directory.lookup(&name("ALICE")).is_some()
        })
        .await;
        south.aliases.lock().unwrap().delete("ALICE", None).unwrap();
        until("ALICE gone at the north", || async {
            north.directory.lookup(&name("ALICE")).is_none()
        })
        .await;

        // A name both sites hold stays with the first to publish it.
        north
            .aliases
            .lock()
            .unwrap()
            .add("BOTH", None, true)
            .unwrap();
        until("south sees BOTH at the north", || async {
            south
                .directory
                .lookup(&name("BOTH"))
                .is_some_and(|r| r.address == north_gw)
        })
        .await;
        south
            .aliases
            .lock()
            .unwrap()
            .add("BOTH", None, true)
            .unwrap();
        until("south counts BOTH as held elsewhere", || async {
            south.names.state().conflicts == 1
        })
        .await;
        assert!(north.directory.lookup(&name("BOTH")).is_none());
        assert_eq!(south.names.state().published, 1);
        shutdown.request();
        shutdown.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn while_nats_is_down_the_directory_waits_and_says_why() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let shutdown = Shutdown::new();
        let url = format!("nats://127.0.0.1:{port}");
        let north = site(
            "north",
            "NHOST",
            &url,
            Ipv4Addr::new(192, 0, 2, 1),
            &shutdown,
        );
        until("the failure is recorded", || async {
            north.names.state().last_error.is_some()
        })
        .await;
        assert!(north.names.state().last_sync.is_none());
        shutdown.request();
        shutdown.finish().await;
    }
}
