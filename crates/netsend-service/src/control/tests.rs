//! The handlers tested in-process, as hickory-dns tests its server: real
//! components (a SQLite inbox in a temporary directory, an alias table
//! persisted there, a registrar with no segments, admission with its drop
//! counters, the shutdown) and a network where no name answers and no
//! interface broadcasts.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use netsend_proto::receipt::ReceiptState;
use netsend_wire::status::NetApiStatus;
use netsend_wire::NetbiosName;

use super::context::{Network, Pending};
use super::{dispatch, dispatch_remote, Caller, Context};
use crate::admission::drops::Drops;
use crate::admission::Admission;
use crate::config::Config;
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
        Self {
            _dir: dir,
            config,
            host,
            inbox,
            aliases,
            registrar,
            forward,
            admission,
            shutdown,
            network: Offline::default(),
        }
    }

    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            config: &self.config,
            host: &self.host,
            inbox: &self.inbox,
            aliases: &self.aliases,
            registrar: &self.registrar,
            forward: &self.forward,
            admission: &self.admission,
            shutdown: &self.shutdown,
            network: &self.network,
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
    let (code, detail) = refusal(host.ask(&alice(), Request::SentStatus { id: 1 }).await);
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
