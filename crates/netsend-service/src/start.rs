//! Start-up and stop: binds the sockets (as root), checks the whole
//! configuration first, builds every component in one place, hands each
//! driver the components it needs, and at a stop waits for every task and
//! closes the inbox before returning.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, UdpSocket, UnixListener};

use crate::admission::Admission;
use crate::config::{Config, ConfigError, Live};
use crate::metrics::{DeliveryCounter, Metrics};
use crate::naming::aliases::AliasTable;
use crate::naming::Naming;
use crate::outbound::Outbound;
use crate::service::Service;
use crate::shutdown::Shutdown;
use crate::store::{Inbox, InboxError, InboxHandle};
use crate::system::host::Host;
use crate::system::net::{self, BindError, Interface};
use crate::system::notify::Notifier;
use netsend_control::remote::RemoteError;
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
    pub remote: Option<(Vec<std::net::TcpListener>, netsend_control::remote::KeyPair)>,
    /// The metrics endpoint, when `[metrics] listen` is set.
    pub metrics: Option<std::net::TcpListener>,
    /// The service's key, when it listens for remote calls or sends
    /// verified (`[trust] verified_send`).
    pub key: Option<netsend_control::remote::KeyPair>,
}

impl Listeners {
    /// Binds every socket the configuration asks for.
    pub fn bind(config: &Config) -> Result<Self, StartError> {
        // The whole configuration is checked before anything is bound.
        config.validate()?;
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
        // Read as root, before privileges are dropped; the key stays
        // private. Verified sends use it too, listening or not.
        let key_file = config
            .remote
            .key_file
            .clone()
            .unwrap_or_else(|| config.state_dir.join("remote.key"));
        let key = if config.remote.listen {
            Some(netsend_control::remote::KeyPair::load_or_create(&key_file)?)
        } else if config.trust.verified_send {
            // Verified sends are tried where they can be: without a usable
            // key, every message goes by SMB, and the log says why.
            netsend_control::remote::KeyPair::load_or_create(&key_file)
                .inspect_err(|e| {
                    tracing::error!(error = %netsend_proto::display::LogSafe(e), "no key for verified sends ([trust] verified_send): sending by SMB only");
                })
                .ok()
        } else {
            None
        };
        let remote = match &key {
            Some(key) if config.remote.listen => {
                let mut listeners = Vec::new();
                for &addr in &bind {
                    listeners.push(net::bind_tcp(
                        "the remote-call channel (TCP)",
                        SocketAddrV4::new(addr, config.remote.port),
                    )?);
                }
                Some((listeners, key.clone()))
            }
            _ => None,
        };
        let metrics = match config.metrics.listen {
            Some(address) => Some(net::bind_tcp_at("the metrics endpoint (HTTP)", address)?),
            None => None,
        };
        Ok(Self {
            session,
            name,
            datagram,
            control,
            interfaces,
            remote,
            metrics,
            key,
        })
    }

    /// Where the metrics endpoint listens, when it is on.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
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

/// Why the service could not start, by what failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is not acceptable.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// A network port could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The control socket could not be created.
    #[error("cannot create the control socket {0}: {1}")]
    Control(PathBuf, std::io::Error),
    /// Another service already answers on the control socket.
    #[error("the messenger service is already running (control socket {0})")]
    AlreadyRunning(PathBuf),
    /// The state directory or a file in it could not be used.
    #[error("state directory {0}: {1}")]
    State(PathBuf, std::io::Error),
    /// The inbox could not be opened.
    #[error("inbox {0}: {1}")]
    Store(PathBuf, InboxError),
    /// The WINS server's table could not be loaded.
    #[error("{0}: {1}")]
    Wins(PathBuf, crate::wins::WinsError),
    /// The remote-call channel's key could not be read or made.
    #[error("remote-call key: {0}")]
    RemoteKey(#[from] RemoteError),
    /// Dropping privileges failed.
    #[error(transparent)]
    Privileges(#[from] crate::system::privileges::PrivilegeError),
    /// A bound socket could not be handed to the runtime, or a signal
    /// handler could not be installed.
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
}

/// Addresses as one text.
fn texts(addresses: &[SocketAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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
async fn apply_retention(inbox: &InboxHandle, config: &Config) {
    match inbox.prune(retention_rules(config)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "retention applied (inbox, queue, sent)"),
        Err(e) => tracing::warn!(error = %LogSafe(&e), "inbox retention failed"),
    }
}

/// Applies retention every hour (the first time is at start, before any
/// request is served, so nobody reads what retention removes), by the
/// rules in force at each run.
async fn keep_retention(inbox: InboxHandle, config: Live<Config>, shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
        }
        apply_retention(&inbox, &config.get()).await;
    }
}

/// What the program running the service hands it besides the sockets:
/// systemd's notification socket, the reload requests (SIGHUP), how to
/// read the configuration file again, and what the program itself applies
/// of a reloaded configuration (its logging).
pub struct Supervision {
    /// `READY=1`, `RELOADING=1`, `STOPPING=1`, `STATUS=`, `WATCHDOG=1`.
    pub notifier: Notifier,
    /// One item per reload request.
    pub reloads: tokio::sync::mpsc::Receiver<()>,
    /// Reads the configuration file again.
    pub reread: Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>,
    /// Applies a reloaded configuration's logging.
    pub on_reload: Box<dyn Fn(&Config) + Send + Sync>,
}

/// Why a reloaded configuration was not taken.
fn check_reloaded(new: &Config) -> Result<(), ConfigError> {
    new.validate()?;
    new.filter.access_list()?;
    new.relay_networks()?;
    new.remote.principals()?;
    Ok(())
}

/// Reads the configuration again and applies what can change live; the
/// rest (`reload::diff`) is logged and shown in status until a restart.
/// A configuration that does not read or check keeps the one in force.
fn reload(service: &Service, started: &Config, supervision: &Supervision) {
    let notifier = &supervision.notifier;
    notifier.reloading();
    let now = crate::store::now_ms();
    let new = match (supervision.reread)().and_then(|new| check_reloaded(&new).map(|()| new)) {
        Ok(new) => new,
        Err(e) => {
            tracing::error!(
                error = %LogSafe(&e),
                "configuration reload rejected; the running configuration stays in force"
            );
            service.reloads.rejected(now, e.to_string());
            notifier.notify("READY=1");
            notifier.status(&format!("serving; reload rejected: {e}"));
            return;
        }
    };
    let current = service.config.get();
    let live = crate::reload::diff(&current, &new).live;
    let restart = crate::reload::diff(started, &new).restart;
    let effective = crate::reload::in_force(started, &new);
    if let Ok(access) = effective.filter.access_list() {
        service.admission.reconfigure(
            access,
            effective.policy_limits(),
            effective.limits.max_connections_per_source,
        );
    }
    {
        let mut aliases = service.naming.aliases.lock().expect("alias table lock");
        aliases.set_max_aliases(effective.limits.max_aliases);
        aliases.set_max_aliases_per_user(effective.limits.max_aliases_per_user);
    }
    service.delivery.reconfigure(&crate::delivery::Parts {
        config: &effective,
        host: &service.host,
        aliases: &service.naming.aliases,
        inbox: &service.inbox,
        shutdown: &service.shutdown,
        counter: DeliveryCounter::new(service.metrics.clone()),
    });
    (supervision.on_reload)(&effective);
    service.config.set(effective);
    let changes = crate::reload::Changes { live, restart };
    tracing::info!(applied = ?changes.live, "configuration reloaded");
    if !changes.restart.is_empty() {
        tracing::warn!(
            keys = ?changes.restart,
            "configuration reload: these keys changed but take effect only after a restart"
        );
    }
    service.reloads.applied(now, &changes);
    notifier.notify("READY=1");
    if changes.restart.is_empty() {
        notifier.status("serving; configuration reloaded");
    } else {
        notifier.status(&format!(
            "serving; configuration reloaded, restart needed for {}",
            changes.restart.join(", ")
        ));
    }
}

/// One turn of the main loop, checked end to end: the inbox's writer
/// commits what came before, and the control socket answers a status
/// request (which reads the inbox on a reader thread), within `limit`.
async fn making_progress(service: &Service, limit: std::time::Duration) -> bool {
    let socket = service.config.get().control_socket.clone();
    let turn = async {
        service.inbox.ping().await.is_ok()
            && tokio::task::spawn_blocking(move || {
                netsend_control::client::call_blocking(
                    &socket,
                    &netsend_control::Request::Status,
                    limit,
                )
                .is_ok_and(|r| matches!(r, netsend_control::Response::Status(_)))
            })
            .await
            .unwrap_or(false)
    };
    tokio::time::timeout(limit, turn).await.unwrap_or(false)
}

/// The main loop: stops when `stop` completes or a client asks, reloads
/// at each request, and feeds systemd's watchdog (when `WatchdogSec=` is
/// set) only while [`making_progress`] says so, so that systemd restarts a
/// wedged service.
async fn main_loop(
    service: &Service,
    started: &Config,
    mut supervision: Supervision,
    stop: impl Future<Output = ()>,
) -> Notifier {
    let every = supervision.notifier.watchdog();
    let mut watchdog = tokio::time::interval(every.unwrap_or(RETENTION_EVERY));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = service.shutdown.cancelled() => break,
            Some(()) = supervision.reloads.recv() => reload(service, started, &supervision),
            _ = watchdog.tick(), if every.is_some() => {
                let limit = every.unwrap_or(RETENTION_EVERY);
                if making_progress(service, limit).await {
                    supervision.notifier.notify("WATCHDOG=1");
                } else {
                    tracing::error!("the main loop made no progress (inbox writer or control socket); the watchdog is not fed");
                }
            }
        }
    }
    supervision.notifier
}

/// How often retention runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Runs the service on already-bound sockets until `stop` completes (the
/// caller's signals) or a client asks it to stop. Privileges are dropped
/// (when configured and running as root) before any peer input is read.
/// `ready` is called once the start-up names are registered (and systemd
/// is told `READY=1`). `listeners` come from [`Listeners::bind`], which
/// checked the whole of `config`. `supervision` brings the reload requests
/// and the notification socket ([`Supervision`]).
///
/// At a stop, every driver stops accepting, every connection, delivery and
/// queue task is awaited, our names are released, and the inbox's writer
/// commits what it holds and is joined before this returns.
pub async fn run(
    config: Config,
    listeners: Listeners,
    ready: impl FnOnce(),
    supervision: Supervision,
    stop: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let started = config.clone();
    let live = Live::new(config);
    let config = live.get();
    let state_dir = config.state_dir.clone();
    // Everything the configuration decides is built before privileges go.
    let policy = config.policy()?;
    let relay_from = config.relay_networks()?;
    let principals = Arc::new(config.remote.principals()?);
    std::fs::create_dir_all(&state_dir).map_err(|e| StartError::State(state_dir.clone(), e))?;
    let terminal_group = if config.display.writes_terminals() {
        config.display.terminal_group.as_str()
    } else {
        ""
    };
    crate::system::privileges::drop_to(&config.user, &state_dir, terminal_group)?;
    let mut aliases = AliasTable::load(&config.computer_name, &state_dir, config.code_page)
        .map_err(|e| StartError::State(state_dir.clone(), e))?;
    aliases.set_local_addresses(listeners.interfaces.iter().map(|i| i.address).collect());
    aliases.set_max_aliases(config.limits.max_aliases);
    aliases.set_max_aliases_per_user(config.limits.max_aliases_per_user);
    let inbox_path = state_dir.join("inbox.db");
    let inbox = Inbox::open(&inbox_path, config.limits.inbox_quota)
        .map_err(|e| StartError::Store(inbox_path.clone(), e))?;
    let (session_addresses, name_addresses, remote_addresses) = (
        listeners.session_addresses(),
        listeners.name_addresses(),
        listeners.remote_addresses(),
    );
    let mut name_sockets = Vec::new();
    for (s, iface) in listeners.name {
        let s = UdpSocket::from_std(s).map_err(|e| StartError::Io("the name service", e))?;
        name_sockets.push((Arc::new(s), iface));
    }
    let host = Arc::new(Host {
        interfaces: listeners.interfaces.clone(),
        session_addresses,
        name_addresses,
        remote_addresses,
        remote_key: listeners
            .remote
            .as_ref()
            .map(|(_, key)| netsend_control::remote::public_key_text(&key.public)),
    });
    let trust = crate::admission::trust::Trust::new(
        config.trust.file_in(&state_dir),
        config.trust.pin_new,
        config.trust.require_verified_from.clone(),
    );
    // The sender names verified peers used before this start, so spoofs of
    // them are flagged after a restart too.
    let verified = inbox
        .verified_senders(netsend_proto::trust::MAX_NAMES)
        .await
        .map_err(|e| StartError::Store(inbox_path.clone(), e))?;
    for (name, host) in &verified {
        trust.note(name, host);
    }
    let drops = Arc::new(crate::admission::drops::Drops::default());
    let metrics = Arc::new(Metrics::new(drops.family()));
    let admission = Arc::new(Admission::new(
        policy,
        drops.clone(),
        config.limits.max_connections_per_source,
        host.clone(),
        trust,
    ));
    let aliases = Arc::new(Mutex::new(aliases));
    let naming = Arc::new(Naming {
        aliases: aliases.clone(),
        registrar: Arc::new(crate::naming::registrar::Registrar::new(
            &name_sockets,
            config.network.name_port,
            config.wins.as_ref().map(|w| w.server),
            config.names.registration(),
            drops,
        )),
    });
    let outbound = Arc::new(Outbound {
        metrics: metrics.clone(),
        config: live.clone(),
        host: host.clone(),
        admission: admission.clone(),
        naming: naming.clone(),
        name_cache: Mutex::default(),
        verified: listeners
            .key
            .clone()
            .filter(|_| config.trust.verified_send)
            .map(|key| crate::outbound::verified::VerifiedSend::new(key, &config)),
        backbone: std::sync::OnceLock::new(),
        wins: std::sync::OnceLock::new(),
    });
    let browse = Arc::new(crate::browse::Browse::new(&config, &host.interfaces)?);
    let shutdown = Shutdown::new();
    let delivery = crate::delivery::Delivery::from_config(
        &crate::delivery::Parts {
            config: &config,
            host: &host,
            aliases: &aliases,
            inbox: &inbox,
            shutdown: &shutdown,
            counter: DeliveryCounter::new(metrics.clone()),
        },
        outbound.clone(),
    );
    let alerter = crate::alerter::Alerter::from_config(&config, &inbox, Box::new(outbound.clone()));
    let wins = if config.wins_server.enabled {
        let server = crate::wins::WinsServer::load(
            config.wins_server.server(),
            inbox.clone(),
            name_sockets.clone(),
            metrics.clone(),
        )
        .await
        .map_err(|e| StartError::Wins(inbox_path.clone(), e))?;
        let _ = outbound.wins.set(server.clone());
        Some(server)
    } else {
        None
    };
    let gateway = config
        .gateway
        .as_ref()
        .map(|g| crate::gateway::Gateway::new(g, outbound.clone(), inbox.clone(), metrics.clone()))
        .transpose()?;
    if let Some(gateway) = &gateway {
        // Names at other sites go over the backbone from the send path.
        let _ = outbound.backbone.set(Arc::new(gateway.clone()));
    }
    let service = Arc::new(Service {
        config: live.clone(),
        reloads: Arc::default(),
        metrics,
        host,
        admission,
        naming,
        outbound,
        inbox,
        relay_from,
        browse: browse.clone(),
        delivery,
        shutdown: shutdown.clone(),
        alerter,
        wins,
        gateway,
    });
    apply_retention(&service.inbox, &config).await;
    match service.inbox.away().await {
        Ok(states) => service.delivery.away().load(states),
        Err(e) => {
            tracing::warn!(reason = %netsend_proto::display::LogSafe(&e), "away messages not loaded")
        }
    }
    for l in listeners.session {
        let l = TcpListener::from_std(l).map_err(|e| StartError::Io("the session service", e))?;
        shutdown.spawn(crate::transport::session::accept_loop(service.clone(), l));
    }
    for (s, iface) in name_sockets {
        shutdown.spawn(crate::transport::name_service::serve(
            service.clone(),
            s,
            iface,
        ));
    }
    shutdown.spawn(service.naming.registrar.clone().run(shutdown.clone()));
    if let Some(wins) = &service.wins {
        shutdown.spawn(wins.clone().run(shutdown.clone()));
    }
    crate::naming::logins::register_startup_names(&service.naming, &config).await;
    for s in listeners.datagram {
        let s = UdpSocket::from_std(s).map_err(|e| StartError::Io("the datagram service", e))?;
        shutdown.spawn(crate::transport::datagrams::serve(service.clone(), s));
    }
    let announcing = shutdown.clone();
    shutdown.spawn(async move { browse.run(announcing).await });
    let control = UnixListener::from_std(listeners.control)
        .map_err(|e| StartError::Io("the control socket", e))?;
    shutdown.spawn(crate::transport::control_socket::serve(
        service.clone(),
        control,
    ));
    if let Some(l) = listeners.metrics {
        let l = TcpListener::from_std(l).map_err(|e| StartError::Io("the metrics endpoint", e))?;
        shutdown.spawn(crate::transport::metrics::serve(service.clone(), l));
    }
    if let Some((listeners, key)) = listeners.remote {
        let key = Arc::new(key);
        for l in listeners {
            let l = TcpListener::from_std(l)
                .map_err(|e| StartError::Io("the remote-call channel", e))?;
            shutdown.spawn(crate::transport::remote::accept_loop(
                service.clone(),
                l,
                key.clone(),
                principals.clone(),
            ));
        }
    }
    let (at_login, for_logins) = (shutdown.clone(), service.clone());
    shutdown.spawn(crate::naming::logins::watch(
        service.naming.clone(),
        config.clone(),
        shutdown.clone(),
        move |user| {
            // The terminals channel and its rules as the last reload left them.
            if let Some(terminals) = for_logins.delivery.terminals() {
                let pending_hours = for_logins.config.get().display.pending_hours;
                at_login.spawn(async move { terminals.show_pending(user, pending_hours).await });
            }
        },
    ));
    shutdown.spawn(keep_retention(
        service.inbox.clone(),
        live.clone(),
        shutdown.clone(),
    ));
    shutdown.spawn(crate::outbound::queue::retry(
        service.outbound.clone(),
        service.inbox.clone(),
        shutdown.clone(),
    ));
    if let Some(alerter) = &service.alerter {
        shutdown.spawn(alerter.clone().run(shutdown.clone()));
        if let Some(disk) = &config.alerter.disk {
            shutdown.spawn(crate::alerter::disk::watch(
                alerter.clone(),
                disk.clone(),
                shutdown.clone(),
            ));
        }
        if let Some(journal) = &config.alerter.journal {
            shutdown.spawn(crate::alerter::journal::watch(
                alerter.clone(),
                journal.clone(),
                shutdown.clone(),
            ));
        }
    }
    if let Some(gateway) = &service.gateway {
        gateway.run(&shutdown);
        // The gateway's own address on its site: the first served interface.
        let address = service
            .host
            .interfaces
            .first()
            .map_or(std::net::Ipv4Addr::LOCALHOST, |i| i.address);
        if let Some(wins) = &service.wins {
            wins.set_fallback(gateway.names.wins_fallback(address));
        }
        let local = crate::gateway::names::LocalNames {
            aliases: service.naming.aliases.clone(),
            wins: service.wins.clone(),
            address,
        };
        shutdown.spawn(
            gateway
                .names
                .clone()
                .run(gateway.link.clone(), local, shutdown.clone()),
        );
    }
    ready();
    tracing::info!(
        computer = %config.computer_name,
        session = ?service.host.session_addresses,
        name = ?service.host.name_addresses,
        "messenger service started"
    );
    // Every socket is bound and served, and the start-up names registered.
    supervision.notifier.notify("READY=1");
    supervision.notifier.status(&format!(
        "serving {} on {}",
        config.computer_name,
        texts(&service.host.session_addresses)
    ));
    let notifier = main_loop(&service, &started, supervision, stop).await;
    notifier.notify("STOPPING=1");
    notifier.status("stopping: finishing connections, deliveries and commits");
    tracing::info!("messenger service stopping");
    shutdown.finish().await;
    service.naming.registrar.release_all().await;
    let _ = std::fs::remove_file(&config.control_socket);
    service.inbox.close().await;
    tracing::info!("messenger service stopped");
    Ok(())
}
