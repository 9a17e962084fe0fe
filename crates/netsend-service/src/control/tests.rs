//! The handlers tested in-process, as hickory-dns tests its server: real
//! components (a SQLite inbox in a temporary directory, an alias table
//! persisted there, a registrar with no segments, admission with its drop
//! counters, the shutdown) and a network where no name answers and no
//! interface broadcasts.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use netsend_proto::receipt::ReceiptState;
use netsend_proto::reply::Fallback;
use netsend_wire::nbns::NodeName;
use netsend_wire::status::NetApiStatus;
use netsend_wire::NetbiosName;

use super::context::{Network, Pending};
use super::{dispatch, dispatch_remote, Caller, Context};
use crate::admission::drops::Drops;
use crate::admission::Admission;
use crate::browse::Browse;
use crate::config::Config;
use crate::delivery::away::AwayBook;
use crate::delivery::forward::{Forward, SendPath, Sending};
use crate::naming::aliases::AliasTable;
use crate::naming::registrar::Registrar;
use crate::outbound::send::{Deadline, SendFailure};
use crate::shutdown::Shutdown;
use crate::store::{Inbox, InboxHandle, NewMessage, StoredMessage, Transport};
use crate::system::host::Host;
use netsend_control::protocol::{MAX_PAGE, MAX_WAIT_MS};
use netsend_control::types::SendReport;
use netsend_control::{Request, Response};

/// A directed send as the network was asked for it: uid, to, from, text.
type Sent = (Option<u32>, String, String, String);

/// What the handlers asked of the network.
#[derive(Debug, Default)]
struct Offline {
    /// (uid, to, from, text) of each directed send.
    sends: Mutex<Vec<Sent>>,
    /// (domain, from, text) of each broadcast.
    broadcasts: Mutex<Vec<(String, String, String)>>,
    /// (message id, state) of each receipt.
    receipts: Mutex<Vec<(i64, ReceiptState)>>,
}

impl Network for Offline {
    fn send(
        &self,
        uid: Option<u32>,
        to: String,
        from: String,
        text: String,
    ) -> Pending<Result<SendReport, SendFailure>> {
        self.sends
            .lock()
            .unwrap()
            .push((uid, to.clone(), from, text));
        Box::pin(async move { Err(SendFailure::NameNotFound(to)) })
    }

    fn send_to_session(
        &self,
        uid: Option<u32>,
        user: String,
        _client: Option<String>,
        from: String,
        text: String,
    ) -> Pending<Result<SendReport, SendFailure>> {
        self.send(uid, user, from, text)
    }

    fn broadcast(
        &self,
        domain: String,
        from: String,
        text: String,
        _split: bool,
    ) -> Pending<Result<usize, SendFailure>> {
        self.broadcasts.lock().unwrap().push((domain, from, text));
        Box::pin(async { Err(SendFailure::NoBroadcastInterface) })
    }

    fn send_receipt(&self, message: &StoredMessage, state: ReceiptState) {
        self.receipts.lock().unwrap().push((message.id, state));
    }

    /// Nothing answers a node status query.
    fn node_status(&self, _address: Ipv4Addr) -> Pending<Option<Vec<NodeName>>> {
        Box::pin(async { None })
    }

    fn resolve_host(&self, name: NetbiosName) -> Pending<Result<Ipv4Addr, SendFailure>> {
        Box::pin(async move { Err(SendFailure::NameNotFound(name.to_string())) })
    }

    fn reply(
        &self,
        message: StoredMessage,
        from: String,
        text: String,
    ) -> Pending<Result<(SendReport, Option<Fallback>), SendFailure>> {
        self.sends
            .lock()
            .unwrap()
            .push((None, message.from, from, text));
        Box::pin(async move { Err(SendFailure::NameNotFound(message.source)) })
    }
}

impl crate::alerter::AlertSend for Offline {
    fn send(&self, to: String, from: String, text: String) -> crate::alerter::Sending {
        Network::send(self, None, to, from, text)
    }
}

impl SendPath for Offline {
    fn resolve(&self, name: NetbiosName, _deadline: Deadline) -> Sending<'_, SocketAddr> {
        Box::pin(async move { Err(SendFailure::NameNotFound(name.to_string())) })
    }

    fn send_to_address<'a>(
        &'a self,
        _to: &'a str,
        address: SocketAddr,
        _from: &'a str,
        _text: &'a str,
        _deadline: Deadline,
    ) -> Sending<'a, ()> {
        Box::pin(async move { Err(SendFailure::Network(address, "no route".into())) })
    }

    fn node_status(&self, ip: Ipv4Addr, _deadline: Deadline) -> Sending<'_, Vec<NodeName>> {
        Box::pin(async move { Err(SendFailure::NameNotFound(ip.to_string())) })
    }
}

/// One host's components, as the service builds them.
pub(crate) struct Components {
    _dir: tempfile::TempDir,
    config: Config,
    host: Arc<Host>,
    inbox: InboxHandle,
    aliases: Arc<Mutex<AliasTable>>,
    registrar: Registrar,
    forward: Forward,
    admission: Admission,
    pub(crate) shutdown: Shutdown,
    network: Offline,
    reloads: crate::reload::ReloadLog,
    alerter: Option<Arc<crate::alerter::Alerter>>,
    away: AwayBook,
    pub(crate) browse: Browse,
}

impl Components {
    pub(crate) fn new(config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("inbox.db"), config.limits.inbox_quota).unwrap();
        let mut aliases =
            AliasTable::load(&config.computer_name, dir.path(), config.code_page).unwrap();
        aliases.set_max_aliases(config.limits.max_aliases);
        aliases.set_max_aliases_per_user(config.limits.max_aliases_per_user);
        let registrar = Registrar::new(
            &[],
            config.network.name_port,
            None,
            config.names.registration(),
            Arc::new(Drops::default()),
        );
        let host = Arc::new(Host {
            interfaces: Vec::new(),
            session_addresses: vec![SocketAddr::from((Ipv4Addr::new(192, 0, 2, 10), 139))],
            name_addresses: Vec::new(),
            remote_addresses: Vec::new(),
            remote_key: None,
        });
        let admission = Admission::new(
            config.policy().unwrap(),
            Arc::new(Drops::default()),
            config.limits.max_connections_per_source,
            host.clone(),
            crate::admission::trust::Trust::new(
                config.trust.file_in(&config.state_dir),
                config.trust.pin_new,
                Vec::new(),
            ),
        );
        let aliases = Arc::new(Mutex::new(aliases));
        let shutdown = Shutdown::new();
        let forward = Forward::new(
            &config,
            &host.interfaces,
            &host.session_addresses,
            aliases.clone(),
            Arc::new(Offline::default()),
            shutdown.clone(),
        );
        let alerter = crate::alerter::Alerter::from_config(
            &Arc::new(config.clone()),
            &inbox,
            Box::new(Offline::default()),
        );
        let browse = Browse::new(&config, &host.interfaces).unwrap();
        Self {
            _dir: dir,
            alerter,
            browse,
            config,
            host,
            inbox,
            aliases,
            registrar,
            forward,
            admission,
            shutdown,
            network: Offline::default(),
            reloads: crate::reload::ReloadLog::default(),
            away: AwayBook::default(),
        }
    }

    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            config: Arc::new(self.config.clone()),
            host: &self.host,
            inbox: &self.inbox,
            aliases: &self.aliases,
            registrar: &self.registrar,
            forward: &self.forward,
            admission: &self.admission,
            shutdown: &self.shutdown,
            reloads: &self.reloads,
            network: &self.network,
            alerter: self.alerter.as_deref(),
            away: &self.away,
            browse: &self.browse,
            wins: None,
        }
    }

    async fn ask(&self, caller: &Caller, request: Request) -> Response {
        dispatch(&self.context(), caller, request).await
    }

    /// Stores a message to `user`'s inbox (`None`: everyone's).
    async fn deliver(&self, user: Option<&str>, text: &str) -> i64 {
        let message = NewMessage {
            from: "PEER".into(),
            to: user.unwrap_or("HOST").to_uppercase(),
            recipient_user: user.map(str::to_owned),
            source: "192.0.2.20:40000".into(),
            text: text.into(),
            transport: Transport::Session,
            broadcast: false,
            verified_host: None,
            claimed_by: None,
        };
        self.inbox.store(message).await.unwrap().id
    }
}

pub(crate) fn config() -> Config {
    Config {
        computer_name: "HOST".into(),
        workgroup: "LAB".into(),
        ..Config::default()
    }
}

fn root() -> Caller {
    Caller::named(0, 0, "root".into())
}

pub(crate) fn alice() -> Caller {
    Caller::named(2001, 2001, "alice".into())
}

fn bob() -> Caller {
    Caller::named(2002, 2002, "bob".into())
}

/// The code and text of an error answer; panics on any other answer.
#[track_caller]
fn refusal(response: Response) -> (NetApiStatus, String) {
    match response {
        Response::Error { code, detail } => (NetApiStatus(code), detail),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn list(limit: usize) -> Request {
    Request::InboxList {
        unread_only: false,
        after_id: None,
        limit,
        search: None,
        wait_ms: 0,
        select: netsend_control::types::InboxSelection::default(),
    }
}

fn ids(response: Response) -> Vec<i64> {
    match response {
        Response::Messages { messages, .. } => messages.iter().map(|m| m.id).collect(),
        other => panic!("expected messages, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_reads_their_own_messages_and_no_one_elses() {
    let host = Components::new(config());
    let for_alice = host.deliver(Some("alice"), "for alice").await;
    let shared = host.deliver(None, "for everyone").await;

    assert_eq!(ids(host.ask(&alice(), list(10)).await), [for_alice, shared]);
    assert_eq!(ids(host.ask(&bob(), list(10)).await), [shared]);
    assert_eq!(ids(host.ask(&root(), list(10)).await), [for_alice, shared]);

    let (code, detail) = refusal(host.ask(&bob(), Request::InboxRead { id: for_alice }).await);
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    assert_eq!(detail, format!("no message {for_alice} in your inbox"));
    let (code, _) = refusal(
        host.ask(&bob(), Request::InboxShown { id: for_alice })
            .await,
    );
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    assert!(host.network.receipts.lock().unwrap().is_empty());

    let Response::Message(read) = host
        .ask(&alice(), Request::InboxRead { id: for_alice })
        .await
    else {
        panic!("alice cannot read her message");
    };
    assert_eq!(read.text, "for alice");
    assert!(read.read_at.is_some(), "the answer carries the read time");
    // The sender hears of the first reading only.
    host.ask(&alice(), Request::InboxRead { id: for_alice })
        .await;
    assert_eq!(
        *host.network.receipts.lock().unwrap(),
        [(for_alice, ReceiptState::Read)]
    );
    let unread = Request::InboxList {
        unread_only: true,
        after_id: None,
        limit: 10,
        search: None,
        wait_ms: 0,
        select: netsend_control::types::InboxSelection::default(),
    };
    assert_eq!(ids(host.ask(&alice(), unread).await), [shared]);
}

#[tokio::test]
async fn deleting_takes_only_the_callers_messages() {
    let host = Components::new(config());
    let for_alice = host.deliver(Some("alice"), "one").await;
    let for_bob = host.deliver(Some("bob"), "two").await;
    let delete = |ids: Vec<i64>| Request::InboxDelete { ids, read: false };

    let answer = host.ask(&bob(), delete(vec![for_alice])).await;
    assert!(
        matches!(answer, Response::Deleted { count: 0 }),
        "{answer:?}"
    );
    let answer = host.ask(&alice(), delete(vec![for_alice, for_bob])).await;
    assert!(
        matches!(answer, Response::Deleted { count: 1 }),
        "{answer:?}"
    );
    assert_eq!(ids(host.ask(&root(), list(10)).await), [for_bob]);
    let answer = host.ask(&root(), delete(vec![for_bob])).await;
    assert!(
        matches!(answer, Response::Deleted { count: 1 }),
        "{answer:?}"
    );
    assert!(ids(host.ask(&root(), list(10)).await).is_empty());
}

#[tokio::test]
async fn a_page_is_capped_and_a_waiting_list_ends_at_its_deadline_or_a_new_message() {
    let host = Components::new(config());
    let mut last = 0;
    for i in 0..MAX_PAGE + 5 {
        last = host.deliver(Some("alice"), &format!("message {i}")).await;
    }
    let first_page = ids(host.ask(&alice(), list(usize::MAX)).await);
    assert_eq!(first_page.len(), MAX_PAGE);
    let after = |after_id, wait_ms| Request::InboxList {
        unread_only: false,
        after_id: Some(after_id),
        limit: 10,
        search: None,
        wait_ms,
        select: netsend_control::types::InboxSelection::default(),
    };
    assert_eq!(
        ids(host.ask(&alice(), after(first_page[99], 0)).await).len(),
        5
    );

    // Nothing new: the answer comes at the deadline, empty.
    let started = std::time::Instant::now();
    assert!(ids(host.ask(&alice(), after(last, 200)).await).is_empty());
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));

    // A follower is answered as soon as a message for it is stored, and not
    // for another user's.
    let ctx = host.context();
    let caller = alice();
    let follower = dispatch(&ctx, &caller, after(last, MAX_WAIT_MS));
    let started = std::time::Instant::now();
    let (answer, stored) = tokio::join!(follower, async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        host.deliver(Some("bob"), "not for alice").await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        host.deliver(Some("alice"), "new").await
    });
    assert_eq!(ids(answer), [stored]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn an_unreachable_message_is_queued_up_to_the_users_share() {
    let mut config = config();
    config.queue.max_per_user = 2;
    let host = Components::new(config);
    let queued = |to: &str| Request::SendQueued {
        to: to.into(),
        from: None,
        text: "later".into(),
        expire_minutes: None,
    };
    let mut queue_ids = Vec::new();
    for to in ["AWAY1", "AWAY2"] {
        match host.ask(&alice(), queued(to)).await {
            Response::Queued { id, reason } => {
                assert_eq!(reason, format!("{to} could not be found on the network"));
                queue_ids.push(id);
            }
            other => panic!("not queued: {other:?}"),
        }
    }
    let (code, detail) = refusal(host.ask(&alice(), queued("AWAY3")).await);
    assert_eq!(code, NetApiStatus::ERROR_REQ_NOT_ACCEP);
    assert_eq!(
        detail,
        "AWAY3 could not be found on the network; and you already have 2 messages waiting in the queue (queue.max_per_user)"
    );
    // Another user's share is their own.
    assert!(matches!(
        host.ask(&bob(), queued("AWAY1")).await,
        Response::Queued { .. }
    ));

    let (code, detail) = refusal(
        host.ask(
            &alice(),
            Request::SendQueued {
                to: "AWAY".into(),
                from: None,
                text: "never".into(),
                expire_minutes: Some(0),
            },
        )
        .await,
    );
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    assert!(detail.starts_with("the expiry must be 1..="), "{detail}");

    let page = |response| match response {
        Response::Queue { entries, more } => {
            assert!(!more);
            entries
                .iter()
                .map(|e: &crate::store::Queued| e.id)
                .collect::<Vec<_>>()
        }
        other => panic!("expected the queue, got {other:?}"),
    };
    let queue = || Request::Queue {
        after_id: None,
        limit: 10,
    };
    assert_eq!(page(host.ask(&alice(), queue()).await), queue_ids);
    assert_eq!(page(host.ask(&root(), queue()).await).len(), 3);

    let cancel = Request::QueueCancel { id: queue_ids[0] };
    let (code, detail) = refusal(host.ask(&bob(), cancel.clone()).await);
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    assert_eq!(
        detail,
        format!("no waiting message {} of yours in the queue", queue_ids[0])
    );
    assert!(matches!(host.ask(&alice(), cancel).await, Response::Ok));
    // A cancelled entry no longer takes a place.
    assert!(matches!(
        host.ask(&alice(), queued("AWAY3")).await,
        Response::Queued { .. }
    ));
}

#[tokio::test]
async fn a_failed_send_answers_its_nerr_code_and_a_claimed_name_is_marked() {
    let host = Components::new(config());
    let send = |from: Option<&str>| Request::Send {
        to: "NOBODY".into(),
        from: from.map(str::to_owned),
        text: "hello".into(),
    };
    let (code, detail) = refusal(host.ask(&alice(), send(Some("boss"))).await);
    assert_eq!(code, NetApiStatus::NERR_NAME_NOT_FOUND);
    assert_eq!(detail, "NOBODY could not be found on the network");
    host.ask(&alice(), send(Some("ALICE"))).await;
    host.ask(&root(), send(Some("boss"))).await;
    assert_eq!(
        *host.network.sends.lock().unwrap(),
        [
            (
                Some(2001),
                "NOBODY".into(),
                "alice".into(),
                "(claims to be boss, sent by uid 2001)\nhello".into()
            ),
            (Some(2001), "NOBODY".into(), "ALICE".into(), "hello".into()),
            (Some(0), "NOBODY".into(), "boss".into(), "hello".into()),
        ]
    );
    // The sent archive keeps the failure; no one else sees it.
    let Response::SentStatus(failed) = host.ask(&alice(), Request::SentStatus { id: 1 }).await
    else {
        panic!("the failed send is not in the archive")
    };
    assert!(failed.outcome.starts_with("failed (2273)"), "{failed:?}");
    let (code, detail) = refusal(host.ask(&bob(), Request::SentStatus { id: 1 }).await);
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    assert_eq!(detail, "no message 1 sent by you");
}

#[tokio::test]
async fn only_root_and_the_broadcast_group_send_to_many() {
    let daemon = nix::unistd::Group::from_name("daemon")
        .unwrap()
        .expect("a daemon group");
    let mut config = config();
    config.broadcast_group = "daemon".into();
    let host = Components::new(config);
    let broadcast = Request::Broadcast {
        domain: None,
        from: None,
        text: "to all".into(),
        split: false,
    };
    let users = Request::SendUsers {
        from: None,
        text: "to all".into(),
    };

    let (code, detail) = refusal(host.ask(&alice(), broadcast.clone()).await);
    assert_eq!(code, NetApiStatus::ERROR_ACCESS_DENIED);
    assert_eq!(
        detail,
        "only root and members of the daemon group may broadcast"
    );
    let (code, detail) = refusal(host.ask(&alice(), users.clone()).await);
    assert_eq!(code, NetApiStatus::ERROR_ACCESS_DENIED);
    assert_eq!(
        detail,
        "only root and members of the daemon group may send to /USERS"
    );
    assert!(host.network.broadcasts.lock().unwrap().is_empty());
    assert!(host.network.sends.lock().unwrap().is_empty());

    // Root and a member (here by primary group) reach the network, which
    // has no interface to broadcast on.
    let member = Caller::named(2003, daemon.gid.as_raw(), "carol".into());
    for caller in [root(), member] {
        let (code, _) = refusal(host.ask(&caller, broadcast.clone()).await);
        assert_eq!(code, NetApiStatus::NERR_NETWORK_ERROR);
        assert!(matches!(
            host.ask(&caller, users.clone()).await,
            Response::Users { .. }
        ));
    }
    assert_eq!(
        *host.network.broadcasts.lock().unwrap(),
        [
            ("LAB".into(), "root".into(), "to all".into()),
            ("LAB".into(), "carol".into(), "to all".into()),
        ]
    );
}

#[tokio::test]
async fn aliases_are_added_and_deleted_by_their_owner_within_the_users_share() {
    let mut config = config();
    config.limits.max_aliases_per_user = 1;
    let host = Components::new(config);
    let add = |name: &str| Request::NameAdd { name: name.into() };
    let del = |name: &str| Request::NameDel { name: name.into() };

    assert!(matches!(
        host.ask(&alice(), add("desk")).await,
        Response::Ok
    ));
    let (code, detail) = refusal(host.ask(&alice(), add("desk2")).await);
    assert_eq!(code, NetApiStatus::NERR_TOO_MANY_NAMES);
    assert_eq!(
        detail,
        "cannot add \"desk2\": the alias table is full, or you hold the most added aliases one user may (1, [limits] max_aliases_per_user)"
    );
    let (code, detail) = refusal(host.ask(&bob(), add("DESK")).await);
    assert_eq!(code, NetApiStatus::NERR_ALREADY_EXISTS);
    assert_eq!(detail, "cannot add \"DESK\"");
    // Root is not held to a user's share.
    assert!(matches!(host.ask(&root(), add("one")).await, Response::Ok));
    assert!(matches!(host.ask(&root(), add("two")).await, Response::Ok));

    let Response::Names { names, .. } = host.ask(&bob(), Request::Names).await else {
        panic!("no names");
    };
    let desk = names.iter().find(|n| n.alias.name == "DESK").unwrap();
    assert_eq!(desk.alias.owner.as_deref(), Some("alice"));
    assert_eq!(desk.network, "local (no broadcast interface)");

    let (code, detail) = refusal(host.ask(&bob(), del("desk")).await);
    assert_eq!(code, NetApiStatus::ERROR_ACCESS_DENIED);
    assert_eq!(detail, "cannot delete \"desk\"");
    let (code, _) = refusal(host.ask(&alice(), del("HOST")).await);
    assert_eq!(code, NetApiStatus::NERR_DEL_COMPUTER_NAME);
    assert!(matches!(
        host.ask(&alice(), del("desk")).await,
        Response::Ok
    ));
    let (code, _) = refusal(host.ask(&alice(), del("desk")).await);
    assert_eq!(code, NetApiStatus::NERR_NOT_LOCAL_NAME);
    assert!(matches!(
        host.ask(&alice(), add("desk2")).await,
        Response::Ok
    ));
}

#[tokio::test]
async fn only_root_adds_the_login_name_of_another_account() {
    let host = Components::new(config());
    let daemon = Caller::named(1, 1, "daemon".into());
    let (code, detail) = refusal(
        host.ask(
            &alice(),
            Request::NameAdd {
                name: "daemon".into(),
            },
        )
        .await,
    );
    assert_eq!(code, NetApiStatus::ERROR_ACCESS_DENIED);
    assert_eq!(
        detail,
        "DAEMON is the login name of the account daemon on this host; only root may add it"
    );
    // The account itself may take its own name, and root any.
    assert!(matches!(
        host.ask(
            &daemon,
            Request::NameAdd {
                name: "Daemon".into()
            }
        )
        .await,
        Response::Ok
    ));
    assert!(matches!(
        host.ask(&root(), Request::NameAdd { name: "bin".into() })
            .await,
        Response::Ok
    ));
}

#[tokio::test]
async fn a_forward_is_set_by_the_aliases_owner_and_never_to_this_host() {
    let host = Components::new(config());
    host.ask(
        &alice(),
        Request::NameAdd {
            name: "desk".into(),
        },
    )
    .await;
    let forward = |host: Option<&str>| Request::NameForward {
        name: "desk".into(),
        host: host.map(str::to_owned),
    };

    let (code, detail) = refusal(host.ask(&bob(), forward(Some("OTHER"))).await);
    assert_eq!(code, NetApiStatus::ERROR_ACCESS_DENIED);
    assert_eq!(detail, "cannot forward \"desk\"");
    let (code, _) = refusal(host.ask(&alice(), forward(Some("192.0.2.10"))).await);
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    let (code, _) = refusal(host.ask(&alice(), forward(Some("host"))).await);
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    let (code, detail) = refusal(
        host.ask(&alice(), forward(Some("a name far too long for netbios")))
            .await,
    );
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    assert!(detail.starts_with("host \"a name far too long"), "{detail}");

    assert!(matches!(
        host.ask(&alice(), forward(Some("OTHER"))).await,
        Response::Ok
    ));
    let Response::Names { names, .. } = host.ask(&alice(), Request::Names).await else {
        panic!("no names");
    };
    let desk = names.iter().find(|n| n.alias.name == "DESK").unwrap();
    assert_eq!(desk.forward.as_deref(), Some("OTHER"));
    let (code, detail) = refusal(host.ask(&bob(), forward(None)).await);
    assert_eq!(code, NetApiStatus::ERROR_ACCESS_DENIED);
    assert_eq!(detail, "cannot cancel the forward of \"desk\"");
    assert!(matches!(
        host.ask(&root(), forward(None)).await,
        Response::Ok
    ));
}

#[tokio::test]
async fn status_counts_the_inbox_and_only_root_stops() {
    let host = Components::new(config());
    host.deliver(Some("alice"), "one").await;
    host.deliver(None, "two").await;
    let Response::Status(status) = host.ask(&bob(), Request::Status).await else {
        panic!("no status");
    };
    assert_eq!(status.computer_name, "HOST");
    assert_eq!(status.workgroup, "LAB");
    assert_eq!(status.messages, 2);
    assert_eq!(status.session_addresses, ["192.0.2.10:139"]);
    assert_eq!(status.dropped, 0);
    assert_eq!(
        status.drops.len(),
        netsend_proto::policy::DropReason::ALL.len()
    );

    let (code, detail) = refusal(host.ask(&alice(), Request::Stop).await);
    assert_eq!(code, NetApiStatus::ERROR_ACCESS_DENIED);
    assert_eq!(detail, "only root may stop the messenger service");
    assert!(!host.shutdown.is_stopping());
    assert!(matches!(
        host.ask(&root(), Request::Stop).await,
        Response::Ok
    ));
    assert!(host.shutdown.is_stopping());
}

#[tokio::test]
async fn a_remote_administrator_runs_only_what_netapi32_offers_remotely() {
    let host = Components::new(config());
    let id = host.deliver(Some("alice"), "private").await;
    let ctx = host.context();
    let (code, detail) =
        refusal(dispatch_remote(&ctx, "administrators:192.0.2.30", list(10)).await);
    assert_eq!(code, NetApiStatus::ERROR_NOT_SUPPORTED);
    assert_eq!(
        detail,
        "only sends and message-name calls may be run remotely"
    );
    let (code, _) = refusal(
        dispatch_remote(&ctx, "administrators:192.0.2.30", Request::InboxRead { id }).await,
    );
    assert_eq!(code, NetApiStatus::ERROR_NOT_SUPPORTED);
    assert!(matches!(
        dispatch_remote(&ctx, "administrators:192.0.2.30", Request::Status).await,
        Response::Status(_)
    ));
    // As root may: add a name that is an account's login name.
    assert!(matches!(
        dispatch_remote(
            &ctx,
            "administrators:192.0.2.30",
            Request::NameAdd {
                name: "daemon".into()
            }
        )
        .await,
        Response::Ok
    ));
    let Response::Names { names, .. } = dispatch_remote(&ctx, "x", Request::Names).await else {
        panic!("no names");
    };
    let added = names.iter().find(|n| n.alias.name == "DAEMON").unwrap();
    assert_eq!(
        added.alias.owner.as_deref(),
        Some("administrators:192.0.2.30")
    );
}

#[tokio::test]
async fn a_search_finds_the_callers_matching_messages_and_a_bad_one_is_refused() {
    let host = Components::new(config());
    let lunch = host.deliver(Some("alice"), "lunch at noon?").await;
    host.deliver(Some("alice"), "the build is green").await;
    host.deliver(Some("bob"), "lunch for bob").await;
    let search = |text: &str| Request::InboxList {
        unread_only: false,
        after_id: None,
        limit: 10,
        search: Some(text.into()),
        wait_ms: 0,
        select: netsend_control::types::InboxSelection::default(),
    };
    assert_eq!(ids(host.ask(&alice(), search("lunch")).await), [lunch]);
    let (code, detail) = refusal(host.ask(&alice(), search("a\0b")).await);
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    assert_eq!(detail, "search text holds a NUL character");
}

#[test]
fn a_failed_read_answers_by_its_kind_and_a_failed_change_is_internal() {
    use super::ControlError;
    use crate::store::InboxError;
    let search = || InboxError::Search(netsend_proto::search::SearchError::Nul);
    let cases = [
        (
            ControlError::read(search()),
            NetApiStatus::ERROR_INVALID_PARAMETER,
        ),
        (
            ControlError::read(InboxError::TooSlow),
            NetApiStatus::ERROR_REQ_NOT_ACCEP,
        ),
        (
            ControlError::read(InboxError::Closed),
            NetApiStatus::NERR_INTERNAL_ERROR,
        ),
        (
            ControlError::store(search()),
            NetApiStatus::NERR_INTERNAL_ERROR,
        ),
        (
            ControlError::store(InboxError::TooSlow),
            NetApiStatus::NERR_INTERNAL_ERROR,
        ),
    ];
    for (error, status) in cases {
        let text = error.to_string();
        let (code, detail) = refusal(error.into());
        assert_eq!((code, detail), (status, text));
    }
}

fn alert(text: &str) -> Request {
    Request::Alert(netsend_control::types::AlertRequest {
        class: netsend_control::types::AlertClass::Admin,
        service: "backup".into(),
        text: text.into(),
        program: None,
    })
}

#[tokio::test]
async fn alerts_need_the_alerter_on_and_a_permitted_caller() {
    let off = Components::new(config());
    let (status, detail) = refusal(off.ask(&root(), alert("tape full")).await);
    assert_eq!(status, NetApiStatus::NERR_SERVICE_NOT_INSTALLED, "{detail}");

    let mut on = config();
    on.alerter.names = vec!["OPS".into()];
    on.alerter.gather_secs = 0;
    on.alerter.groups = Some(vec!["daemon".into()]);
    let c = Components::new(on);
    c.shutdown
        .spawn(c.alerter.clone().unwrap().run(c.shutdown.clone()));
    let (status, detail) = refusal(c.ask(&alice(), alert("tape full")).await);
    assert_eq!(status, NetApiStatus::ERROR_ACCESS_DENIED);
    assert!(detail.contains("daemon"), "{detail}");
    let (status, _) = refusal(c.ask(&root(), alert(" ")).await);
    assert_eq!(status, NetApiStatus::ERROR_INVALID_PARAMETER);
    let daemon = nix::unistd::Group::from_name("daemon").unwrap().unwrap();
    let member = Caller::named(2003, daemon.gid.as_raw(), "carol".into());
    let Response::Alert(report) = c.ask(&member, alert("tape full")).await else {
        panic!("no alert report")
    };
    // OPS is not on this network: the alert waits in the queue for it.
    assert_eq!(report.queued.len(), 1, "{report:?}");
    assert_eq!(report.queued[0].name, "OPS");
    let Response::Status(status) = c.ask(&root(), Request::Status).await else {
        panic!("no status")
    };
    assert_eq!(status.alerts.map(|a| (a.raised, a.sent)), Some((1, 1)));
    c.shutdown.request();
    c.shutdown.finish().await;
}

fn select(select: netsend_control::types::InboxSelection, limit: usize) -> Request {
    Request::InboxList {
        unread_only: false,
        after_id: None,
        limit,
        search: None,
        wait_ms: 0,
        select,
    }
}

/// `netsend inbox -n N`: the newest N in order, the total beside them;
/// paging back from the first id; `--from` and `--since` select.
#[tokio::test]
async fn the_newest_messages_come_with_the_total_and_page_back() {
    use netsend_control::types::InboxSelection;
    let host = Components::new(config());
    let mut all = Vec::new();
    for i in 0..25 {
        all.push(host.deliver(Some("alice"), &format!("m{i}")).await);
    }
    let newest = InboxSelection {
        newest: true,
        count: true,
        ..InboxSelection::default()
    };
    let Response::Messages {
        messages, total, ..
    } = host.ask(&alice(), select(newest.clone(), 20)).await
    else {
        panic!("no messages")
    };
    let got: Vec<i64> = messages.iter().map(|m| m.id).collect();
    assert_eq!(got, all[5..]);
    assert_eq!(total, Some(25));
    let back = InboxSelection {
        before_id: Some(all[5]),
        ..newest.clone()
    };
    assert_eq!(ids(host.ask(&alice(), select(back, 20)).await), all[..5]);
    // Bob sees none of them.
    let Response::Messages { total, .. } = host.ask(&bob(), select(newest, 20)).await else {
        panic!("no answer")
    };
    assert_eq!(total, Some(0));
    // --from: another sender's message only.
    let other = host
        .inbox
        .store(NewMessage {
            from: "Carol".into(),
            to: "ALICE".into(),
            recipient_user: Some("alice".into()),
            source: "192.0.2.30:40000".into(),
            text: "from carol".into(),
            transport: Transport::Session,
            broadcast: false,
            verified_host: None,
            claimed_by: None,
        })
        .await
        .unwrap()
        .id;
    let from = InboxSelection {
        from: Some("CAROL".into()),
        ..InboxSelection::default()
    };
    assert_eq!(ids(host.ask(&alice(), select(from, 20)).await), [other]);
    // --since: nothing after the future, everything after the past.
    let future = InboxSelection {
        since_ms: Some(crate::store::now_ms() + 60_000),
        ..InboxSelection::default()
    };
    assert!(ids(host.ask(&alice(), select(future, 100)).await).is_empty());
    let past = InboxSelection {
        since_ms: Some(0),
        ..InboxSelection::default()
    };
    assert_eq!(ids(host.ask(&alice(), select(past, 100)).await).len(), 26);
}

/// Every send goes to the sender's archive with its outcome, failures and
/// broadcasts included; each user sees their own, root everyone's.
#[tokio::test]
async fn the_sent_archive_holds_each_send_with_its_outcome() {
    let host = Components::new(config());
    let send = Request::Send {
        to: "BOB".into(),
        from: None,
        text: "are you there?".into(),
    };
    refusal(host.ask(&alice(), send).await);
    let broadcast = Request::Broadcast {
        domain: None,
        from: None,
        text: "to all".into(),
        split: false,
    };
    refusal(host.ask(&root(), broadcast).await);
    let sent_search = |newest, search: Option<&str>| Request::SentList {
        after_id: None,
        before_id: None,
        limit: 10,
        newest,
        search: search.map(String::from),
        to: None,
        since_ms: None,
        count: true,
    };
    let sent = |newest| sent_search(newest, None);
    let Response::SentList { records, total, .. } = host.ask(&alice(), sent(true)).await else {
        panic!("no sent list")
    };
    assert_eq!(total, Some(1));
    assert_eq!(records[0].to, "BOB");
    assert_eq!(records[0].text, "are you there?");
    assert!(
        records[0].outcome.starts_with("failed (2273)"),
        "{records:?}"
    );
    let Response::SentList { records, .. } = host.ask(&root(), sent(false)).await else {
        panic!("no sent list")
    };
    let owners: Vec<&str> = records.iter().map(|r| r.owner.as_str()).collect();
    assert_eq!(owners, ["alice", "root"]);
    assert_eq!(records[1].kind, netsend_control::types::SentKind::Broadcast);
    assert_eq!(records[1].to, "LAB");
    let search = sent_search(false, Some("THERE"));
    let Response::SentList { records, .. } = host.ask(&root(), search).await else {
        panic!("no sent list")
    };
    assert_eq!(records.len(), 1);
}

/// A thread holds what came from the correspondent and what went to them,
/// in time order.
#[tokio::test]
async fn a_thread_is_both_directions_in_time_order() {
    let host = Components::new(config());
    let first = host.deliver(Some("alice"), "hello from peer").await;
    let send = Request::Send {
        to: "peer".into(),
        from: None,
        text: "hello peer".into(),
    };
    refusal(host.ask(&alice(), send).await);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let last = host.deliver(Some("alice"), "again").await;
    host.deliver(Some("bob"), "not alice's").await;
    let thread = Request::Thread {
        with: "Peer".into(),
        limit: 10,
        received_before: None,
        sent_before: None,
    };
    let Response::Thread { entries, total, .. } = host.ask(&alice(), thread).await else {
        panic!("no thread")
    };
    assert_eq!(total, 3);
    let order: Vec<String> = entries
        .iter()
        .map(|e| match e {
            netsend_control::types::ThreadEntry::Received(m) => format!("< {}", m.id),
            netsend_control::types::ThreadEntry::Sent(s) => format!("> {}", s.text),
        })
        .collect();
    assert_eq!(
        order,
        [
            format!("< {first}"),
            "> hello peer".to_owned(),
            format!("< {last}")
        ]
    );
}

/// A reply goes out as the caller to the message's sender; one to a
/// message the caller may not see is refused, and a failed one is
/// archived with its reason.
#[tokio::test]
async fn a_reply_answers_the_sender_as_the_caller() {
    let host = Components::new(config());
    let id = host.deliver(Some("alice"), "question").await;
    let (code, _) = refusal(
        host.ask(
            &bob(),
            Request::Reply {
                id,
                text: "no".into(),
            },
        )
        .await,
    );
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    let (code, _) = refusal(
        host.ask(
            &alice(),
            Request::Reply {
                id,
                text: "answer".into(),
            },
        )
        .await,
    );
    assert_eq!(code, NetApiStatus::NERR_NAME_NOT_FOUND);
    let sends = host.network.sends.lock().unwrap().clone();
    assert_eq!(
        sends,
        [(None, "PEER".into(), "alice".into(), "answer".into())]
    );
}

/// An away message is kept durably, shown to its user by `Away`, `Names`
/// and `Status`, and ended with `AwaySet { text: None }`.
#[tokio::test]
async fn an_away_message_is_kept_and_shown_until_it_ends() {
    let host = Components::new(config());
    let set = Request::AwaySet {
        text: Some("  at lunch  ".into()),
    };
    let Response::Away { state: Some(state) } = host.ask(&alice(), set).await else {
        panic!("not away")
    };
    assert_eq!(state.text, "at lunch");
    assert_eq!(
        host.inbox.away().await.unwrap(),
        std::slice::from_ref(&state)
    );
    let Response::Away { state: shown } = host.ask(&alice(), Request::Away).await else {
        panic!("no answer")
    };
    assert_eq!(shown.as_ref(), Some(&state));
    let Response::Away { state: none } = host.ask(&bob(), Request::Away).await else {
        panic!("no answer")
    };
    assert!(none.is_none());
    let Response::Names { away, .. } = host.ask(&alice(), Request::Names).await else {
        panic!("no names")
    };
    assert_eq!(away.as_ref(), Some(&state));
    let Response::Status(status) = host.ask(&root(), Request::Status).await else {
        panic!("no status")
    };
    assert_eq!(status.away, [state]);
    let (code, _) = refusal(
        host.ask(
            &alice(),
            Request::AwaySet {
                text: Some(" ".into()),
            },
        )
        .await,
    );
    assert_eq!(code, NetApiStatus::ERROR_INVALID_PARAMETER);
    let Response::Away { state: None } = host.ask(&alice(), Request::AwaySet { text: None }).await
    else {
        panic!("still away")
    };
    assert!(host.inbox.away().await.unwrap().is_empty());
}

#[tokio::test]
async fn view_lists_the_hosts_heard_and_asks_their_messenger() {
    use netsend_proto::browse::{browse_datagram, hear, Announcer, Identity};
    let c = Components::new(Config::default());
    // GAMMA announces itself as netsend does; the datagram driver hands it
    // to the browse list.
    let identity = Identity {
        name: NetbiosName::new("GAMMA", 0).unwrap(),
        workgroup: NetbiosName::new("WORKGROUP", 0).unwrap(),
        comment: b"third floor".to_vec(),
        address: Ipv4Addr::new(192, 0, 2, 30),
        port: 138,
    };
    let mut announcer = Announcer::new(identity.clone(), 1);
    announcer.start(std::time::Instant::now());
    while let Some(bytes) = announcer.poll_transmit() {
        c.browse
            .take(identity.address, false, &hear(&bytes).unwrap());
    }
    let other = netsend_wire::browse::BrowseFrame::Announcement(
        netsend_wire::browse::Announcement::new(
            netsend_wire::browse::AnnouncementKind::Host,
            b"FAR",
            1,
            60_000,
            b"",
        )
        .unwrap(),
    );
    let far = NetbiosName::new("OTHERS", 0x1D).unwrap();
    let bytes = browse_datagram(&identity, 2, &other, far).unwrap();
    c.browse
        .take(identity.address, false, &hear(&bytes).unwrap());
    let user = Caller::named(1000, 1000, "alice".into());
    let Response::Hosts { domain, hosts } = c.ask(&user, Request::View { domain: None }).await
    else {
        panic!("not a host list")
    };
    assert_eq!(domain, "WORKGROUP");
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].name, "GAMMA");
    assert_eq!(hosts[0].comment, "third floor");
    assert_eq!(hosts[0].address, "192.0.2.30");
    assert_eq!(hosts[0].server_type, netsend_proto::browse::SERVER_TYPE);
    // Offline: the node status query is not answered.
    assert_eq!(
        hosts[0].messenger,
        netsend_control::types::MessengerState::NoAnswer
    );
    let request = Request::View {
        domain: Some("others".into()),
    };
    let Response::Hosts { hosts, .. } = c.ask(&user, request).await else {
        panic!("not a host list")
    };
    assert_eq!(hosts[0].name, "FAR");
    let Response::Domains { domains } = c.ask(&user, Request::ViewDomains).await else {
        panic!("not a domain list")
    };
    assert_eq!(domains[0].name, "WORKGROUP");
    let bad = Request::View {
        domain: Some("BAD*NAME".into()),
    };
    assert!(matches!(
        c.ask(&user, bad).await,
        Response::Error { code: 87, .. }
    ));
    let unknown = Request::ViewHost {
        host: "NOBODY".into(),
    };
    assert!(matches!(
        c.ask(&user, unknown).await,
        Response::Error { code: 2273, .. }
    ));
    let silent = Request::ViewHost {
        host: "GAMMA".into(),
    };
    assert!(matches!(
        c.ask(&user, silent).await,
        Response::Error { code: 53, .. }
    ));
}

#[tokio::test]
async fn a_verified_delivery_is_never_taken_from_the_control_socket() {
    let host = Components::new(config());
    let deliver = Request::Deliver {
        host: "HOSTA".into(),
        from: "ADMIN".into(),
        to: "HOST".into(),
        text: "forged".into(),
    };
    for caller in [root(), bob()] {
        let (code, _) = refusal(host.ask(&caller, deliver.clone()).await);
        assert_eq!(code, NetApiStatus::ERROR_NOT_SUPPORTED);
    }
    assert!(ids(host.ask(&root(), list(10)).await).is_empty());
}
