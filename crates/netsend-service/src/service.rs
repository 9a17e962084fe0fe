//! The messenger service: binds its sockets, then runs the session, name and
//! control drivers until asked to stop.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use netsend_proto::policy::{DropReason, Policy, Source};
use netsend_wire::CodePage;
use tokio::net::{TcpListener, UdpSocket, UnixListener};
use tokio::sync::watch;

use crate::config::Config;
use crate::naming::aliases::AliasTable;
use crate::store::{Inbox, InboxHandle, NewMessage, Transport};
use crate::system::net::{self, BindError, Interface};
use netsend_proto::display::LogSafe;

/// Sockets bound before privileges are dropped.
pub struct Listeners {
    /// TCP session service listeners.
    pub session: Vec<std::net::TcpListener>,
    /// UDP name service sockets, each with the interface it answers for.
    pub name: Vec<(std::net::UdpSocket, Interface)>,
    /// UDP datagram service sockets.
    pub datagram: Vec<std::net::UdpSocket>,
    /// The control socket.
    pub control: std::os::unix::net::UnixListener,
    /// Interfaces served.
    pub interfaces: Vec<Interface>,
    /// The remote-call channel's listeners and the service's key, when
    /// `[remote] listen` is on.
    pub remote: Option<(Vec<std::net::TcpListener>, crate::remote::KeyPair)>,
}

impl Listeners {
    /// Binds every socket the configuration asks for.
    pub fn bind(config: &Config) -> Result<Self, StartError> {
        let bind: Vec<Ipv4Addr> = config.network.bind.clone();
        let interfaces = net::interfaces(&bind, &config.network.interfaces);
        let mut session = Vec::new();
        for &addr in &bind {
            session.push(net::bind_tcp(
                "the session service (TCP)",
                SocketAddrV4::new(addr, config.network.session_port),
            )?);
        }
        let mut name = Vec::new();
        let mut name_port = config.network.name_port;
        for iface in &interfaces {
            let unicast = net::bind_udp(
                "the name service (UDP)",
                SocketAddrV4::new(iface.address, name_port),
            )?;
            // With port 0 (tests), every socket shares the first one's port.
            name_port = unicast.local_addr().map(|a| a.port()).unwrap_or(name_port);
            name.push((unicast, *iface));
            if let Some(bcast) = iface.broadcast {
                let b = net::bind_udp(
                    "the name service (UDP broadcast)",
                    SocketAddrV4::new(bcast, name_port),
                )?;
                name.push((b, *iface));
            }
        }
        let mut datagram = Vec::new();
        let mut datagram_port = config.network.datagram_port;
        for iface in &interfaces {
            let unicast = net::bind_udp(
                "the datagram service (UDP)",
                SocketAddrV4::new(iface.address, datagram_port),
            )?;
            datagram_port = unicast
                .local_addr()
                .map(|a| a.port())
                .unwrap_or(datagram_port);
            datagram.push(unicast);
            if let Some(bcast) = iface.broadcast {
                datagram.push(net::bind_udp(
                    "the datagram service (UDP broadcast)",
                    SocketAddrV4::new(bcast, datagram_port),
                )?);
            }
        }
        let control_path = &config.control_socket;
        if let Some(dir) = control_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StartError::Control(control_path.clone(), e))?;
        }
        if std::os::unix::net::UnixStream::connect(control_path).is_ok() {
            return Err(StartError::AlreadyRunning(control_path.clone()));
        }
        let _ = std::fs::remove_file(control_path);
        let control = std::os::unix::net::UnixListener::bind(control_path)
            .map_err(|e| StartError::Control(control_path.clone(), e))?;
        control
            .set_nonblocking(true)
            .map_err(|e| StartError::Control(control_path.clone(), e))?;
        // Everyone may connect; the service checks each caller's credentials.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(control_path, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| StartError::Control(control_path.clone(), e))?;
        let remote = if config.remote.listen {
            // Read as root, before privileges are dropped; the key stays private.
            let key_file = config
                .remote
                .key_file
                .clone()
                .unwrap_or_else(|| config.state_dir.join("remote.key"));
            let key = crate::remote::KeyPair::load_or_create(&key_file)
                .map_err(|e| StartError::State(config.state_dir.clone(), e.to_string()))?;
            let mut listeners = Vec::new();
            for &addr in &bind {
                listeners.push(net::bind_tcp(
                    "the remote-call channel (TCP)",
                    SocketAddrV4::new(addr, config.remote.port),
                )?);
            }
            Some((listeners, key))
        } else {
            None
        };
        Ok(Self {
            session,
            name,
            datagram,
            control,
            interfaces,
            remote,
        })
    }

    /// The addresses the remote-call channel listens on (empty when off).
    pub fn remote_addresses(&self) -> Vec<SocketAddr> {
        self.remote.as_ref().map_or_else(Vec::new, |(ls, _)| {
            ls.iter().filter_map(|l| l.local_addr().ok()).collect()
        })
    }

    /// The addresses the session service listens on.
    pub fn session_addresses(&self) -> Vec<SocketAddr> {
        self.session
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The addresses the name service listens on.
    pub fn name_addresses(&self) -> Vec<SocketAddr> {
        self.name
            .iter()
            .filter_map(|(s, _)| s.local_addr().ok())
            .collect()
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A network port could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The control socket could not be created.
    #[error("cannot create the control socket {0}: {1}")]
    Control(PathBuf, std::io::Error),
    /// Another service already answers on the control socket.
    #[error("the messenger service is already running (control socket {0})")]
    AlreadyRunning(PathBuf),
    /// The state directory or its files could not be used.
    #[error("state directory {0}: {1}")]
    State(PathBuf, String),
    /// Dropping privileges failed.
    #[error("cannot drop privileges to user {0:?}: {1}")]
    Privileges(String, String),
}

/// State shared by every driver.
pub struct Service {
    /// The configuration in force.
    pub config: Config,
    /// The OEM code page for names and text.
    pub code_page: CodePage,
    /// The message alias table.
    pub aliases: Mutex<AliasTable>,
    /// The durable inbox.
    pub inbox: InboxHandle,
    /// Interfaces served.
    pub interfaces: Vec<Interface>,
    /// Where the session service listens (for status and local delivery).
    pub session_addresses: Vec<SocketAddr>,
    /// Where the name service listens.
    pub name_addresses: Vec<SocketAddr>,
    /// Where the remote-call channel listens (empty when `[remote] listen`
    /// is off).
    pub remote_addresses: Vec<SocketAddr>,
    /// The service's public key for remote calls, as text, which callers pin
    /// (`netsend remote trust`); `None` when the channel is off.
    pub remote_key: Option<String>,
    /// Allow/deny lists and rate limits per source and per claimed sender.
    policy: Mutex<Policy>,
    /// Messages, connections and name demands dropped since start, by reason.
    drops: Arc<crate::admission::drops::Drops>,
    /// Open TCP sessions per source (an address, or a local user), at most
    /// `[limits] max_connections_per_source` each.
    connections: crate::admission::slots::OpenTable<Source>,
    /// The local end of each of our own connections to our session service
    /// that carries a local user's message, with that user's uid.
    local_senders: Mutex<HashMap<SocketAddr, u32>>,
    /// Networks whose domain broadcasts we relay into our subnets.
    pub(crate) relay_from: Vec<ipnet::IpNet>,
    /// Recently resolved names.
    pub(crate) name_cache: Mutex<crate::outbound::send::NameCache>,
    /// Name registrations on the broadcast segments.
    pub(crate) registrar: Arc<crate::naming::registrar::Registrar>,
    /// The `[[hooks]]`, run after each stored message.
    pub(crate) hooks: crate::delivery::hooks::HookRunner,
    /// Slots for forwarding stored messages on.
    pub(crate) forwards: crate::admission::slots::TaskSlots,
    stop: watch::Sender<bool>,
}

impl Service {
    /// A receiver that changes when the service is asked to stop.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Asks every driver to stop.
    pub fn request_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// What a connection from `peer` counts against: the local user whose
    /// message we are carrying on it, or else its address.
    fn source_of(&self, peer: SocketAddr) -> Source {
        let local = self.local_senders.lock().expect("local sender lock");
        local
            .get(&peer)
            .map_or(Source::Address(peer.ip()), |&uid| Source::LocalUser(uid))
    }

    /// Records that the connection from `local` (to our own session
    /// service) carries a message of the local user `uid`, until the guard
    /// is dropped.
    pub(crate) fn local_sender(self: &Arc<Self>, local: SocketAddr, uid: u32) -> LocalSender {
        self.local_senders
            .lock()
            .expect("local sender lock")
            .insert(local, uid);
        LocalSender {
            service: self.clone(),
            local,
        }
    }

    /// Whether `ip` is this host: loopback or a served address.
    pub(crate) fn is_own_address(&self, ip: IpAddr) -> bool {
        ip.is_loopback()
            || self.interfaces.iter().any(|i| IpAddr::V4(i.address) == ip)
            || self.session_addresses.iter().any(|a| a.ip() == ip)
    }

    /// Whether `peer` may deliver one more message claiming `from` now;
    /// counts and logs a drop.
    pub(crate) fn admit(&self, peer: SocketAddr, from: &str) -> bool {
        let now = std::time::Instant::now();
        let source = self.source_of(peer);
        let verdict = self
            .policy
            .lock()
            .expect("policy lock")
            .admit(now, source, from);
        self.verdict(verdict, peer, from)
    }

    /// [`Self::admit`] for a MESSNGR datagram, which also takes from the
    /// budget all datagram sources share.
    pub(crate) fn admit_datagram(&self, peer: SocketAddr, from: &str) -> bool {
        let now = std::time::Instant::now();
        let verdict = self
            .policy
            .lock()
            .expect("policy lock")
            .admit_datagram(now, peer.ip(), from);
        self.verdict(verdict, peer, from)
    }

    /// Whether a datagram from `peer` that carries no message (a receipt)
    /// may be taken: its address is not denied. Counts and logs a drop.
    pub(crate) fn admit_address(&self, peer: SocketAddr) -> bool {
        if self
            .policy
            .lock()
            .expect("policy lock")
            .admits_address(peer.ip())
        {
            return true;
        }
        self.count_drop(
            DropReason::DeniedAddress,
            peer,
            "",
            std::time::Duration::ZERO,
        );
        false
    }

    /// Whether a node status request from `peer` is answered now; it is
    /// on-link when it is this host or on the subnet of a served interface.
    pub(crate) fn admit_status(&self, peer: SocketAddr) -> bool {
        let on_link = match peer.ip() {
            IpAddr::V4(ip) => {
                self.is_own_address(peer.ip()) || self.interfaces.iter().any(|i| i.is_on_link(ip))
            }
            IpAddr::V6(_) => false,
        };
        self.policy.lock().expect("policy lock").admit_status(
            std::time::Instant::now(),
            peer.ip(),
            on_link,
        )
    }

    fn verdict(
        &self,
        verdict: Result<(), netsend_proto::policy::Refusal>,
        peer: SocketAddr,
        from: &str,
    ) -> bool {
        match verdict {
            Ok(()) => true,
            Err(refusal) => {
                self.count_drop(refusal.reason, peer, from, refusal.retry_after);
                false
            }
        }
    }

    /// Writes `message` to its recipients' terminals (with `only`, to that
    /// user's alone) and records the receipt "shown" for each user whose
    /// terminal took it (a shared message is shown to each for themselves).
    pub(crate) async fn show_on_terminals(
        self: &Arc<Self>,
        message: crate::store::StoredMessage,
        only: Option<String>,
    ) {
        let service = self.clone();
        let shown = tokio::task::spawn_blocking(move || {
            let reached = crate::delivery::terminals::show(&service, &message, only.as_deref());
            (reached, message)
        })
        .await;
        let Ok((reached, message)) = shown else {
            return;
        };
        for user in &reached {
            if let Err(e) = self.inbox.mark_shown(message.id, Some(user)).await {
                tracing::warn!(id = message.id, user = %LogSafe(&user), error = %LogSafe(&e), "cannot record the receipt");
            }
        }
        if !reached.is_empty() && message.shown_at.is_none() {
            self.send_receipt(&message, netsend_proto::receipt::ReceiptState::Shown);
        }
    }

    /// Records a delivered message for `netsend status`; returns its id.
    pub(crate) async fn record_sent(
        &self,
        owner: String,
        report: &crate::control::SendReport,
        from: &str,
        text: &str,
    ) -> Option<i64> {
        let address = report
            .address
            .parse::<SocketAddr>()
            .map_or_else(|_| report.address.clone(), |a| a.ip().to_string());
        let op = crate::store::SentOp::Record {
            owner,
            to: report.to.clone(),
            from: from.to_owned(),
            address,
            digest: netsend_proto::receipt::digest(text),
            keep: self.config.sent.max_per_user,
        };
        self.inbox.sent_change(op).await.ok()
    }

    /// Tells the host a directed message came from that it was shown or read
    /// (`[display] receipts`): a datagram on `\MAILSLOT\NETSEND\RECEIPT`
    /// to its datagram port. Broadcasts and local deliveries get none.
    pub(crate) fn send_receipt(
        self: &Arc<Self>,
        message: &crate::store::StoredMessage,
        state: netsend_proto::receipt::ReceiptState,
    ) {
        if !self.config.display.receipts
            || message.broadcast
            || message.transport != Transport::Session
        {
            return;
        }
        let Ok(SocketAddr::V4(peer)) = message.source.parse::<SocketAddr>() else {
            return;
        };
        let receipt = netsend_proto::receipt::Receipt {
            state,
            at_ms: crate::store::now_ms(),
            digest: netsend_proto::receipt::digest(&message.text),
            to: message.to.clone(),
            from: message.from.clone(),
        };
        let service = self.clone();
        let id = message.id;
        tokio::spawn(async move {
            match crate::transport::datagrams::send_receipt(&service, *peer.ip(), &receipt).await {
                Ok(()) => {
                    tracing::info!(id, peer = %peer.ip(), state = state.as_str(), "receipt sent")
                }
                Err(e) => {
                    tracing::info!(id, peer = %peer.ip(), error = %LogSafe(&e), "receipt not sent")
                }
            }
        });
    }

    /// Store-and-forward: at `user`'s login, shows on their terminals the
    /// messages for them that no one has seen yet, if no older than
    /// `[display] pending_hours`.
    async fn show_pending(self: &Arc<Self>, user: String) {
        let hours = self.config.display.pending_hours;
        if hours == 0 || !self.config.display.writes_terminals() {
            return;
        }
        let since =
            crate::store::now_ms().saturating_sub(i64::try_from(hours).unwrap_or(0) * 3_600_000);
        match self.inbox.pending(&user, since).await {
            Ok(messages) => {
                for message in messages {
                    tracing::info!(id = message.id, user = %LogSafe(&user), "showing a message kept while away");
                    self.show_on_terminals(message, Some(user.clone())).await;
                }
            }
            Err(e) => {
                tracing::warn!(user = %LogSafe(&user), error = %LogSafe(&e), "cannot read waiting messages")
            }
        }
    }

    /// Counts a drop and writes its log line (structured: reason, peer,
    /// source, sender).
    pub(crate) fn count_drop(
        &self,
        reason: DropReason,
        peer: SocketAddr,
        from: &str,
        retry_after: std::time::Duration,
    ) {
        // What the drop was counted against: the address, or a local user.
        let source = self.source_of(peer).to_string();
        self.drops
            .count(reason, peer, &source, from, retry_after, 1);
    }

    /// Drops counted since start, by reason (every reason listed).
    pub fn drop_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.drops.counts()
    }

    /// Takes a session slot for `peer`, or `None` (counted and logged) when
    /// the address is denied or already holds its share of sessions.
    pub(crate) fn open_session(&self, peer: SocketAddr) -> Option<SessionSlot> {
        if !self.admit_address(peer) {
            return None;
        }
        let slot = self.connections.take(self.source_of(peer));
        if slot.is_none() {
            self.count_drop(
                DropReason::SourceConnections,
                peer,
                "",
                std::time::Duration::ZERO,
            );
        }
        slot
    }

    /// Builds the inbox record of a message received from `peer`.
    pub(crate) fn new_message(
        &self,
        message: &netsend_proto::message::Message,
        peer: SocketAddr,
        transport: Transport,
    ) -> NewMessage {
        let aliases = self.aliases.lock().expect("alias table lock");
        let to_name = netsend_wire::NetbiosName::from_oem_lossy(message.to.as_bytes(), 0x03);
        let alias = aliases.resolve_destination(&to_name);
        NewMessage {
            from: message.from.clone(),
            to: alias.map_or_else(|| message.to.clone(), |a| a.name.clone()),
            recipient_user: alias.and_then(|a| a.owner.clone()),
            source: peer.to_string(),
            text: message.text.clone(),
            transport,
            broadcast: false,
        }
    }

    /// Hook run after a message is durable (its acknowledgement does not wait
    /// for it), with the message as [`crate::store::InboxHandle::store`]
    /// returned it (not read back): writes it to its recipients' terminals (`[display]
    /// terminals`), starts the matching `[[hooks]]`, and forwards the message
    /// when its alias is forwarded. Desktop notifications come from
    /// `netsend agent` in each user's session.
    pub(crate) fn delivered(self: &Arc<Self>, message: crate::store::StoredMessage) {
        let terminals = self.config.display.writes_terminals();
        let forwards = self
            .aliases
            .lock()
            .expect("alias table lock")
            .has_forwards();
        if !terminals && self.hooks.is_empty() && !forwards && !self.config.log.messages {
            return;
        }
        let service = self.clone();
        tokio::spawn(async move {
            let id = message.id;
            if terminals {
                let (service, message) = (service.clone(), message.clone());
                tokio::spawn(async move { service.show_on_terminals(message, None).await });
            }
            if service.config.log.messages {
                let (path, line) = (service.message_log_path(), message_log_line(&message));
                let written = tokio::task::spawn_blocking(move || append_line(&path, &line)).await;
                if let Ok(Err(e)) = written {
                    tracing::warn!(id, error = %LogSafe(&e), "cannot write the message log");
                }
            }
            service.hooks.dispatch(&message);
            crate::delivery::forward::start(&service, message);
        });
    }

    /// The outgoing queue's retry rules, from `[queue]`.
    pub(crate) fn retry_rules(&self) -> netsend_proto::queue::RetryRules {
        let q = &self.config.queue;
        netsend_proto::queue::RetryRules {
            first: std::time::Duration::from_secs(q.retry_secs.max(1)),
            longest: std::time::Duration::from_secs(q.max_retry_secs.max(q.retry_secs).max(1)),
        }
    }

    /// NET LOG's file.
    fn message_log_path(&self) -> PathBuf {
        self.config
            .log
            .messages_path
            .clone()
            .unwrap_or_else(|| self.config.state_dir.join("messages.log"))
    }
}

/// One line of the message log: a JSON object with the time (UTC, RFC 3339),
/// id, sender, alias, recipient user, source, transport, broadcast flag and
/// text.
fn message_log_line(m: &crate::store::StoredMessage) -> String {
    let time = chrono::DateTime::from_timestamp_millis(m.received_at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let line = serde_json::json!({
        "time": time,
        "id": m.id,
        "from": m.from,
        "to": m.to,
        "user": m.recipient_user,
        "source": m.source,
        "transport": m.transport,
        "broadcast": m.broadcast,
        "text": m.text,
    });
    crate::json::to_line(&line).unwrap_or_default()
}

/// Appends `line` to `path` (created mode 0600), opened for each line so a
/// rotated log is followed.
fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{line}\n").as_bytes())
}

/// `days` in milliseconds.
fn days_ms(days: u64) -> i64 {
    i64::try_from(days)
        .unwrap_or(i64::MAX / 86_400_000)
        .saturating_mul(86_400_000)
}

/// The retention rules: `[inbox]`, and the finished queue entries and sent
/// records past their ages (`[queue]`, `[sent]`).
fn retention_rules(config: &Config) -> crate::store::Retention {
    crate::store::Retention {
        max_age_ms: days_ms(config.inbox.max_age_days),
        max_per_inbox: config.inbox.max_messages,
        finished_max_age_ms: days_ms(config.queue.keep_finished_days),
        sent_max_age_ms: days_ms(config.sent.max_age_days),
    }
}

/// Applies retention once.
async fn apply_retention(service: &Service) {
    match service.inbox.prune(retention_rules(&service.config)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "retention applied (inbox, queue, sent)"),
        Err(e) => tracing::warn!(error = %LogSafe(&e), "inbox retention failed"),
    }
}

/// Applies retention every hour (the first time is at start, before any
/// request is served, so nobody reads what retention removes).
async fn keep_retention(service: Arc<Service>) {
    let mut stop = service.stop_signal();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
        }
        apply_retention(&service).await;
    }
}

/// Tries queued messages again when they are due, until each is delivered
/// or expires. Attempts run side by side within
/// [`netsend_proto::queue::Attempts`]' bounds, so a recipient that hangs
/// until the send deadline holds one slot and the rest of the queue goes on.
async fn retry_queue(service: Arc<Service>) {
    let mut stop = service.stop_signal();
    let mut attempts = netsend_proto::queue::Attempts::new(QUEUE_ATTEMPTS, QUEUE_ATTEMPTS_PER_USER);
    let mut running = tokio::task::JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    loop {
        match service.inbox.due(crate::store::now_ms()).await {
            Ok(due) => {
                for q in due {
                    if attempts.admit(q.id, &q.owner, &q.to) {
                        let id = q.id;
                        let task = running.spawn(attempt_queued(service.clone(), q));
                        ids.insert(task.id(), id);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %LogSafe(&e), "cannot read the queue"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            Some(done) = running.join_next_with_id() => {
                let task = done.map_or_else(|e| e.id(), |(task, ())| task);
                if let Some(id) = ids.remove(&task) {
                    attempts.finish(id);
                }
            }
            _ = tokio::time::sleep(QUEUE_POLL) => {}
        }
    }
}

/// One attempt of a queued message, and its outcome recorded in the queue.
async fn attempt_queued(service: Arc<Service>, q: crate::store::Queued) {
    // A local user's queued message counts against them, as when it was sent.
    let uid = nix::unistd::User::from_name(&q.owner)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    let sent = crate::outbound::send::send(&service, uid, &q.to, &q.from, &q.text).await;
    let op = match sent {
        Ok(report) => {
            tracing::info!(event = "send", id = q.id, to = %LogSafe(&report.to), peer = %report.address, "queued message delivered");
            crate::store::QueueOp::Delivered { id: q.id }
        }
        Err(e) => {
            let attempts = q.attempts.saturating_add(1);
            let next_try = match service.retry_rules().after_failure(
                crate::store::now_ms(),
                attempts,
                q.expires_at,
            ) {
                netsend_proto::queue::AfterFailure::RetryAt(t)
                    if netsend_proto::queue::is_transient(e.status().0) =>
                {
                    Some(t)
                }
                _ => None,
            };
            if next_try.is_none() {
                tracing::info!(event = "drop", id = q.id, to = %LogSafe(&q.to), reason = %LogSafe(&e), "queued message given up");
            }
            crate::store::QueueOp::Failed {
                id: q.id,
                error: e.to_string(),
                next_try,
            }
        }
    };
    if let Err(e) = service.inbox.queue(op).await {
        tracing::warn!(id = q.id, error = %LogSafe(&e), "cannot update the queue");
    }
}

/// Queued messages attempted at once, in all and for one user.
const QUEUE_ATTEMPTS: usize = 16;
const QUEUE_ATTEMPTS_PER_USER: usize = 4;

/// How often the outgoing queue is checked for due entries.
const QUEUE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// How often retention runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Registers the computer name `<00>`, every alias `<03>` and the workgroup
/// `<00>` (group), and waits for the computer's messenger name.
async fn register_startup_names(service: &Arc<Service>) {
    let (computer, aliases) = {
        let table = service.aliases.lock().expect("alias table lock");
        (table.computer_name(), table.names().collect::<Vec<_>>())
    };
    let registrar = &service.registrar;
    registrar.register(
        computer.with_suffix(netsend_wire::name::suffix::WORKSTATION),
        false,
    );
    for name in aliases.iter().skip(1) {
        registrar.register(*name, false);
    }
    if let Ok(workgroup) = netsend_wire::NetbiosName::with_code_page(
        &service.config.workgroup,
        netsend_wire::name::suffix::WORKSTATION,
        service.code_page,
    ) {
        registrar.register(workgroup, true);
    }
    if let Err(owner) = registrar.register_and_wait(computer).await {
        tracing::error!(
            name = %computer, owner = %LogSafe(&owner),
            "NERR_NoComputerName (2270): the computer name could not be added as a message alias; another host owns it"
        );
    }
}

/// How often utmp is read for logins and logouts.
const LOGIN_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps one message alias per logged-in user.
async fn watch_logins(service: Arc<Service>) {
    let mut stop = service.stop_signal();
    let mut present: Vec<String> = Vec::new();
    loop {
        let sessions = crate::system::users::logins(&service.config).await;
        let users = crate::system::users::local_users(&sessions);
        // Everyone who has a session now and had none before: new logins,
        // remote ones included (their terminal is on this host).
        let mut everyone: Vec<String> = Vec::new();
        for s in sessions {
            if !everyone.contains(&s.user) {
                everyone.push(s.user);
            }
        }
        for user in everyone.iter().filter(|u| !present.contains(u)) {
            let (service, user) = (service.clone(), user.clone());
            tokio::spawn(async move { service.show_pending(user).await });
        }
        present = everyone;
        let crate::naming::aliases::UserSync {
            added,
            removed,
            reclaimed,
        } = service
            .aliases
            .lock()
            .expect("alias table lock")
            .sync_users(&users);
        if !added.is_empty() || !removed.is_empty() {
            tracing::info!(?users, "user aliases updated");
        }
        for r in reclaimed {
            tracing::warn!(
                name = %r.name,
                holder = r.holder.as_deref().unwrap_or(""),
                user = %r.user,
                "an added alias named after an account went to that account at its login"
            );
        }
        for name in added {
            service.registrar.register(name, false);
        }
        for name in removed {
            service.registrar.release(&name);
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(LOGIN_POLL) => {}
        }
    }
}

/// One TCP session counted against its source; released on drop.
pub(crate) type SessionSlot = crate::admission::slots::CountedSlot<Source>;

/// A local user's connection to our own session service, known by its
/// local end (see [`Service::local_sender`]); forgotten when dropped.
pub(crate) struct LocalSender {
    service: Arc<Service>,
    local: SocketAddr,
}

impl Drop for LocalSender {
    fn drop(&mut self) {
        self.service
            .local_senders
            .lock()
            .expect("local sender lock")
            .remove(&self.local);
    }
}

/// Runs the service on already-bound sockets until a stop request or signal.
/// Privileges are dropped (when configured and running as root) before any
/// peer input is read. `ready` is called once the start-up names are registered.
pub async fn run(
    config: Config,
    listeners: Listeners,
    ready: impl FnOnce(),
) -> Result<(), StartError> {
    let code_page = config.code_page;
    let state_dir = config.state_dir.clone();
    std::fs::create_dir_all(&state_dir)
        .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
    let terminal_group = if config.display.writes_terminals() {
        config.display.terminal_group.as_str()
    } else {
        ""
    };
    crate::system::privileges::drop_to(&config.user, &state_dir, terminal_group)?;
    let mut aliases = AliasTable::load(&config.computer_name, &state_dir, code_page)
        .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
    aliases.set_local_addresses(listeners.interfaces.iter().map(|i| i.address).collect());
    aliases.set_max_aliases(config.limits.max_aliases);
    aliases.set_max_aliases_per_user(config.limits.max_aliases_per_user);
    let inbox = Inbox::open(&state_dir.join("inbox.db"), config.limits.inbox_quota)
        .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
    let (stop, _) = watch::channel(false);
    let session_addresses = listeners.session_addresses();
    let name_addresses = listeners.name_addresses();
    let remote_addresses = listeners.remote_addresses();
    let mut name_sockets = Vec::new();
    for (s, iface) in listeners.name {
        let s = UdpSocket::from_std(s)
            .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
        name_sockets.push((Arc::new(s), iface));
    }
    let wins_server = config.wins.as_ref().map(|w| w.server);
    let drops = Arc::new(crate::admission::drops::Drops::default());
    let registrar = Arc::new(crate::naming::registrar::Registrar::new(
        &name_sockets,
        config.network.name_port,
        wins_server,
        config.names.registration(),
        drops.clone(),
    ));
    let policy = config
        .policy()
        .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
    let remote_key = listeners
        .remote
        .as_ref()
        .map(|(_, key)| crate::remote::public_key_text(&key.public));
    let service = Arc::new(Service {
        remote_addresses,
        remote_key,
        policy: Mutex::new(policy),
        drops,
        connections: crate::admission::slots::OpenTable::new(
            config.limits.max_connections_per_source,
        ),
        local_senders: Mutex::default(),
        relay_from: config
            .relay_networks()
            .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?,
        name_cache: Mutex::default(),
        registrar,
        hooks: crate::delivery::hooks::HookRunner::new(&config.hooks),
        forwards: crate::delivery::forward::slots(),
        session_addresses,
        name_addresses,
        interfaces: listeners.interfaces.clone(),
        config,
        code_page,
        aliases: Mutex::new(aliases),
        inbox,
        stop,
    });
    let remote = listeners.remote;
    apply_retention(&service).await;
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners.session {
        let l = TcpListener::from_std(l)
            .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
        tasks.spawn(crate::transport::session::accept_loop(service.clone(), l));
    }
    for (s, iface) in name_sockets {
        tasks.spawn(crate::transport::name_service::serve(
            service.clone(),
            s,
            iface,
        ));
    }
    tasks.spawn(service.registrar.clone().run(service.stop_signal()));
    register_startup_names(&service).await;
    for s in listeners.datagram {
        let s = UdpSocket::from_std(s)
            .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
        tasks.spawn(crate::transport::datagrams::serve(service.clone(), s));
    }
    let control = UnixListener::from_std(listeners.control)
        .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
    tasks.spawn(crate::control::server::serve(service.clone(), control));
    if let Some((listeners, key)) = remote {
        let principals = service
            .config
            .remote
            .principals()
            .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
        let key = Arc::new(key);
        let principals = Arc::new(principals);
        for l in listeners {
            let l = TcpListener::from_std(l)
                .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
            tasks.spawn(crate::transport::remote::accept_loop(
                service.clone(),
                l,
                key.clone(),
                principals.clone(),
            ));
        }
    }
    tasks.spawn(watch_logins(service.clone()));
    tasks.spawn(keep_retention(service.clone()));
    tasks.spawn(retry_queue(service.clone()));
    ready();
    tracing::info!(
        computer = %service.config.computer_name,
        session = ?service.session_addresses,
        name = ?service.name_addresses,
        "messenger service started"
    );
    let mut stop = service.stop_signal();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| StartError::State(state_dir.clone(), e.to_string()))?;
    tokio::select! {
        _ = stop.changed() => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    service.request_stop();
    tasks.shutdown().await;
    service.registrar.release_all().await;
    let _ = std::fs::remove_file(&service.config.control_socket);
    service.inbox.close().await;
    tracing::info!("messenger service stopped");
    Ok(())
}
