//! Serves the control socket: one task per client, one JSON request per line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use netsend_wire::status::NetApiStatus;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use netsend_proto::registration::{NameReport, NameState};
use netsend_wire::name::suffix;
use netsend_wire::NetbiosName;

use crate::naming::aliases::Alias;
use crate::naming::registrar::Scope;
use crate::service::Service;
use crate::store::{InboxError, ListFilter, StoredMessage};
use netsend_control::protocol::{MAX_PAGE, MAX_PAGE_BYTES, MAX_REQUEST_LEN, MAX_WAIT_MS};
use netsend_control::types::{AliasStatus, StatusInfo, UserDelivery, UserFailure};
use netsend_control::{Request, Response};
use netsend_proto::display::LogSafe;

/// Who is calling, from the socket's peer credentials.
#[derive(Debug, Clone)]
struct Caller {
    uid: u32,
    gid: u32,
    /// The caller's user name; `None` for root, who sees everything.
    user: Option<String>,
    /// The caller's name for display even when root.
    login: String,
}

impl Caller {
    fn from_stream(stream: &UnixStream) -> Option<Self> {
        let cred = stream.peer_cred().ok()?;
        let uid = cred.uid();
        let gid = cred.gid();
        let login = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid{uid}"), |u| u.name);
        let user = (uid != 0).then(|| login.clone());
        Some(Self {
            uid,
            gid,
            user,
            login,
        })
    }
}

/// Runs a request that arrived over the remote-call channel from a principal
/// in this host's `group` (administrators or server_operators), who may do
/// what root may do here. Only the calls that netapi32 offers remotely are
/// served; anything else is ERROR_NOT_SUPPORTED.
pub(crate) async fn handle_remote(
    service: &Arc<Service>,
    principal: &str,
    request: Request,
) -> Response {
    let caller = Caller {
        uid: 0,
        gid: 0,
        user: None,
        login: principal.to_owned(),
    };
    match request {
        Request::Send { .. }
        | Request::Names
        | Request::NameAdd { .. }
        | Request::NameDel { .. }
        | Request::Status => handle(service, &caller, request).await,
        _ => error(
            NetApiStatus::ERROR_NOT_SUPPORTED,
            "only sends and message-name calls may be run remotely",
        ),
    }
}

/// The messages `filter` selects; when there are none, waits up to `wait`
/// for a newly stored one that it selects (or for the service to stop).
async fn list_or_wait(
    service: &Arc<Service>,
    filter: &ListFilter,
    wait: Duration,
) -> Result<Vec<StoredMessage>, InboxError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut stored = service.inbox.watch_stored();
    loop {
        // Seen before listing, so a message stored meanwhile wakes us.
        stored.borrow_and_update();
        let messages = service.inbox.list(filter).await?;
        if !messages.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(messages);
        }
        tokio::select! {
            changed = stored.changed() => if changed.is_err() { return Ok(messages) },
            () = tokio::time::sleep_until(deadline) => return Ok(messages),
            _ = service.shutdown.cancelled() => return Ok(messages),
        }
    }
}

/// Whether message `id` has no such receipt yet from anyone (`receipt` picks
/// its time out of the message's own columns, the first reader's).
async fn first_receipt(
    service: &Service,
    id: i64,
    receipt: impl Fn(&StoredMessage) -> Option<i64>,
) -> bool {
    matches!(service.inbox.get(id, None).await, Ok(Some(m)) if receipt(&m).is_none())
}

/// Cuts `entries` to the first ones whose JSON takes at most
/// [`MAX_PAGE_BYTES`] (always at least one); returns whether any were cut.
fn fit_page<T: serde::Serialize>(entries: &mut Vec<T>) -> bool {
    let mut bytes = 0;
    let fits = entries
        .iter()
        .position(|e| {
            bytes += serde_json::to_vec(e).map_or(MAX_PAGE_BYTES, |v| v.len());
            bytes > MAX_PAGE_BYTES
        })
        .map_or(entries.len(), |i| i.max(1));
    let cut = fits < entries.len();
    entries.truncate(fits);
    cut
}

/// The error answer for a failed inbox read: a refused search text is 87,
/// a read stopped for taking too long 71, anything else 2140.
fn inbox_error(e: &InboxError) -> Response {
    let code = match e {
        InboxError::Search(_) => NetApiStatus::ERROR_INVALID_PARAMETER,
        InboxError::TooSlow => NetApiStatus::ERROR_REQ_NOT_ACCEP,
        _ => NetApiStatus::NERR_INTERNAL_ERROR,
    };
    error(code, e.to_string())
}

/// Most control clients connected at once.
const MAX_CONTROL_CONNECTIONS: usize = 512;
/// Most of them one user other than root may hold.
const MAX_CONTROL_CONNECTIONS_PER_USER: usize = 64;
/// How long a client may take to send its next request before it is
/// disconnected (a waiting `InboxList` is not idle: it is being answered).
const CONTROL_IDLE: Duration = Duration::from_secs(30);

/// Accepts control clients until shutdown.
pub(crate) async fn serve(service: Arc<Service>, listener: UnixListener) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONTROL_CONNECTIONS));
    let per_user = crate::admission::slots::OpenTable::new(MAX_CONTROL_CONNECTIONS_PER_USER);
    loop {
        let stream = tokio::select! {
            _ = service.shutdown.cancelled() => return,
            a = listener.accept() => match a { Ok((s, _)) => s, Err(_) => continue },
        };
        // Local clients (a follower waits here up to a minute) cannot pile up
        // without bound: beyond the cap a new connection is closed at once.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "control socket: {MAX_CONTROL_CONNECTIONS} clients connected; one refused"
            );
            continue;
        };
        let (task, per_user) = (service.clone(), per_user.clone());
        service.shutdown.spawn(async move {
            let service = task;
            let _slot = slot;
            let Some(caller) = Caller::from_stream(&stream) else {
                return;
            };
            // Root has no per-user cap.
            let _user_slot = if caller.uid == 0 {
                None
            } else {
                let Some(slot) = per_user.take(caller.uid) else {
                    tracing::warn!(
                        uid = caller.uid,
                        "control socket: {MAX_CONTROL_CONNECTIONS_PER_USER} clients of one user connected; one refused"
                    );
                    return;
                };
                Some(slot)
            };
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            loop {
                let mut line = String::new();
                let mut bounded = (&mut reader).take(MAX_REQUEST_LEN as u64);
                // At a stop, no new request is read; one being answered
                // finishes first.
                let read = tokio::select! {
                    () = service.shutdown.cancelled() => return,
                    r = tokio::time::timeout(CONTROL_IDLE, bounded.read_line(&mut line)) => r,
                };
                match read {
                    Ok(Ok(0) | Err(_)) | Err(_) => return,
                    Ok(Ok(_)) => {}
                }
                let over_long = !line.ends_with('\n') && line.len() >= MAX_REQUEST_LEN;
                let response = match serde_json::from_str::<Request>(&line) {
                    _ if over_long => error(
                        NetApiStatus::ERROR_INVALID_PARAMETER,
                        format!("request longer than {MAX_REQUEST_LEN} bytes"),
                    ),
                    Ok(request) => handle(&service, &caller, request).await,
                    Err(e) => error(
                        NetApiStatus::ERROR_INVALID_PARAMETER,
                        format!("bad request: {e}"),
                    ),
                };
                let mut out = serde_json::to_string(&response).unwrap_or_else(|_| "{}".into());
                out.push('\n');
                if write.write_all(out.as_bytes()).await.is_err() || over_long {
                    return;
                }
            }
        });
    }
}

/// Describes where a name stands on the network: over every broadcast segment
/// and at the WINS server, and what happened to it lately on the segments
/// (`reports`, read at `now`).
fn network_state(states: &[(Scope, NameState)], reports: &[NameReport], now: Instant) -> String {
    if states.is_empty() {
        return "local (no broadcast interface)".into();
    }
    let mut text = if let Some((_, NameState::Conflict { owner })) = states
        .iter()
        .find(|(_, s)| matches!(s, NameState::Conflict { .. }))
    {
        format!("conflict (owned by {owner})")
    } else {
        let registering = states.iter().any(|(_, s)| *s == NameState::Registering);
        let mut scopes: Vec<&str> = states
            .iter()
            .map(|(scope, _)| match scope {
                Scope::Broadcast => "broadcast",
                Scope::Wins => "WINS",
            })
            .collect();
        scopes.dedup();
        let state = if registering {
            "registering"
        } else {
            "registered"
        };
        format!("{state} ({})", scopes.join(", "))
    };
    let secs = |d: Duration| format!("{} s", d.as_secs());
    if let Some(at) = reports.iter().filter_map(|r| r.retry_at).min() {
        text += &format!(
            ", tried again in {}",
            secs(at.saturating_duration_since(now))
        );
    }
    for r in reports {
        if let (NameState::Registered, Some((owner, at))) = (r.state, r.last_conflict) {
            text += &format!(
                "; was held by {owner} (conflict {} ago), ours again",
                secs(now.saturating_duration_since(at))
            );
        }
        if let Some(demand) = r.checking {
            text += &format!("; checking a {}", demand.as_str());
        }
        if let Some(last) = r.last_ignored {
            text += &format!(
                "; ignored {} unverified demand(s), the last a {} from {} {} ago",
                r.ignored,
                last.demand.as_str(),
                last.from,
                secs(now.saturating_duration_since(last.at))
            );
        }
    }
    text
}

/// The sender name and text to send for `caller`. Root may claim any sender
/// name; anyone else who claims a name other than their own sends as
/// themselves, and the text says who they claimed to be.
fn sender_identity(caller: &Caller, claimed: Option<String>, text: String) -> (String, String) {
    match claimed {
        None => (caller.login.clone(), text),
        Some(name) if caller.uid == 0 || name.eq_ignore_ascii_case(&caller.login) => (name, text),
        Some(name) => (
            caller.login.clone(),
            format!("(claims to be {name}, sent by uid {})\n{text}", caller.uid),
        ),
    }
}

/// The account other than `user` whose login name is the alias `alias`
/// (upper case, as aliases are; `typed` as the caller wrote it): an account
/// named like it in lower case, upper case or as written. An ordinary user
/// may not add such an alias.
fn other_account(alias: &str, typed: &str, user: &str) -> Option<String> {
    [
        alias.to_lowercase(),
        alias.to_owned(),
        typed.trim().to_owned(),
    ]
    .iter()
    .filter_map(|candidate| nix::unistd::User::from_name(candidate).ok().flatten())
    .map(|account| account.name)
    .find(|account| account != user)
}

/// Root, and members of the configured `broadcast_group`, may send `*`,
/// `/DOMAIN` and `/USERS`.
fn may_broadcast(caller: &Caller, group_name: &str) -> bool {
    if caller.uid == 0 {
        return true;
    }
    match nix::unistd::Group::from_name(group_name) {
        Ok(Some(group)) => {
            group.mem.iter().any(|m| m == &caller.login) || caller.gid == group.gid.as_raw()
        }
        _ => false,
    }
}

fn error(code: NetApiStatus, detail: impl Into<String>) -> Response {
    Response::Error {
        code: code.0,
        detail: detail.into(),
    }
}

/// How many `/USERS` copies are in flight at once.
const USERS_FAN_OUT: usize = 32;

async fn handle(service: &Arc<Service>, caller: &Caller, request: Request) -> Response {
    match request {
        Request::Status => {
            let messages = service.inbox.count().await.unwrap_or(0);
            Response::Status(StatusInfo {
                computer_name: service.config.computer_name.clone(),
                workgroup: service.config.workgroup.clone(),
                pid: std::process::id(),
                session_addresses: service
                    .host
                    .session_addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                name_addresses: service
                    .host
                    .name_addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                messages,
                remote_addresses: service
                    .host
                    .remote_addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                remote_key: service.host.remote_key.clone(),
                dropped: service.admission.drop_counts().values().sum(),
                drops: service.admission.drop_counts(),
            })
        }
        Request::Stop => {
            if caller.uid != 0 && caller.uid != nix::unistd::geteuid().as_raw() {
                return error(
                    NetApiStatus::ERROR_ACCESS_DENIED,
                    "only root may stop the messenger service",
                );
            }
            service.shutdown.request();
            Response::Ok
        }
        Request::Names => {
            let aliases: Vec<(NetbiosName, Alias)> = {
                let table = service.naming.aliases.lock().expect("alias table lock");
                table.names().zip(table.list().cloned()).collect()
            };
            let mut table = service.naming.aliases.lock().expect("alias table lock");
            let names = aliases
                .into_iter()
                .map(|(name, alias)| AliasStatus {
                    network: network_state(
                        &service.naming.registrar.states(&name),
                        &service.naming.registrar.reports(&name),
                        Instant::now(),
                    ),
                    forward: table.forward_of(&alias.name).map(String::from),
                    alias,
                })
                .collect();
            let notices = table.take_notices(&caller.login);
            drop(table);
            Response::Names { names, notices }
        }
        Request::NameAdd { name } => {
            if let Some(user) = &caller.user {
                let text = service
                    .naming
                    .aliases
                    .lock()
                    .expect("alias table lock")
                    .alias_text(&name);
                if let Some(account) = text.ok().and_then(|t| other_account(&t, &name, user)) {
                    return error(
                        NetApiStatus::ERROR_ACCESS_DENIED,
                        format!(
                            "{} is the login name of the account {account} on this host; only root may add it",
                            name.to_uppercase()
                        ),
                    );
                }
            }
            let added = service
                .naming
                .aliases
                .lock()
                .expect("alias table lock")
                .add(&name, Some(caller.login.clone()), caller.uid == 0);
            if added == Err(NetApiStatus::NERR_TOO_MANY_NAMES) && caller.uid != 0 {
                return error(
                    NetApiStatus::NERR_TOO_MANY_NAMES,
                    format!(
                        "cannot add {name:?}: the alias table is full, or you hold the most added aliases one user may ({}, [limits] max_aliases_per_user)",
                        service.config.limits.max_aliases_per_user
                    ),
                );
            }
            let alias = match added {
                Ok(alias) => alias,
                Err(code) => return error(code, format!("cannot add {name:?}")),
            };
            let netbios = NetbiosName::with_code_page(
                &alias.name,
                suffix::MESSENGER,
                service.config.code_page,
            );
            let Ok(netbios) = netbios else {
                return error(
                    NetApiStatus::ERROR_INVALID_PARAMETER,
                    format!("cannot add {name:?}"),
                );
            };
            match service.naming.registrar.register_and_wait(netbios).await {
                Ok(()) => Response::Ok,
                Err(owner) => {
                    let _ = service
                        .naming
                        .aliases
                        .lock()
                        .expect("alias table lock")
                        .delete(&alias.name, None);
                    service.naming.registrar.release(&netbios);
                    error(
                        NetApiStatus::NERR_DUPLICATE_NAME,
                        format!(
                            "{} is already registered on the network by {owner}",
                            alias.name
                        ),
                    )
                }
            }
        }
        Request::NameDel { name } => {
            let deleted = service
                .naming
                .aliases
                .lock()
                .expect("alias table lock")
                .delete(&name, caller.user.as_deref());
            match deleted {
                Ok(alias) => {
                    if let Ok(n) = NetbiosName::with_code_page(
                        &alias.name,
                        suffix::MESSENGER,
                        service.config.code_page,
                    ) {
                        service.naming.registrar.release(&n);
                    }
                    Response::Ok
                }
                Err(code) => error(code, format!("cannot delete {name:?}")),
            }
        }
        Request::NameForward { name, host } => {
            let forward = service.delivery.forward();
            match forward.set(&name, host, caller.user.as_deref()) {
                Ok(()) => Response::Ok,
                Err(e) => error(e.status(), e.to_string()),
            }
        }
        Request::InboxList {
            unread_only,
            after_id,
            limit,
            search,
            wait_ms,
        } => {
            let filter = ListFilter {
                user: caller.user.clone(),
                unread_only,
                after_id,
                limit: limit.min(MAX_PAGE),
                search,
            };
            let wait = Duration::from_millis(wait_ms.min(MAX_WAIT_MS));
            match list_or_wait(service, &filter, wait).await {
                Ok(mut messages) => {
                    let more = fit_page(&mut messages);
                    Response::Messages { messages, more }
                }
                Err(e) => inbox_error(&e),
            }
        }
        Request::InboxRead { id } => match service.inbox.get(id, caller.user.as_deref()).await {
            Ok(Some(message)) => {
                // The sender hears of the first reader only.
                let first = first_receipt(service, id, |m| m.read_at).await;
                let _ = service.inbox.mark_read(id, caller.user.as_deref()).await;
                if first {
                    service.send_receipt(&message, netsend_proto::receipt::ReceiptState::Read);
                }
                // Answer with the receipt times just recorded.
                let marked = service.inbox.get(id, caller.user.as_deref()).await;
                Response::Message(marked.ok().flatten().unwrap_or(message))
            }
            Ok(None) => error(
                NetApiStatus::ERROR_INVALID_PARAMETER,
                format!("no message {id} in your inbox"),
            ),
            Err(e) => inbox_error(&e),
        },
        Request::SendQueued {
            to,
            from,
            text,
            expire_minutes,
        } => {
            let q = &service.config.queue;
            let minutes = match netsend_proto::queue::expiry_minutes(
                expire_minutes,
                q.expire_minutes,
                q.max_expire_minutes,
            ) {
                Ok(minutes) => minutes,
                Err(e) => return error(NetApiStatus::ERROR_INVALID_PARAMETER, e.to_string()),
            };
            let (from, text) = sender_identity(caller, from, text);
            match crate::outbound::send::send(
                &service.outbound,
                Some(caller.uid),
                &to,
                &from,
                &text,
            )
            .await
            {
                Ok(mut report) => {
                    report.receipt_id = service
                        .record_sent(caller.login.clone(), &report, &from, &text)
                        .await;
                    Response::Sent(report)
                }
                Err(e) if netsend_proto::queue::is_transient(e.status().0) => {
                    let now = crate::store::now_ms();
                    let rules = crate::outbound::queue::retry_rules(&service.config.queue);
                    let expires_at = now.saturating_add(
                        i64::try_from(minutes)
                            .unwrap_or(i64::MAX / 60_000)
                            .saturating_mul(60_000),
                    );
                    let next_try = match rules.after_failure(now, 1, expires_at) {
                        netsend_proto::queue::AfterFailure::RetryAt(t) => t,
                        netsend_proto::queue::AfterFailure::Expire => expires_at,
                    };
                    let op = crate::store::QueueOp::Add {
                        owner: caller.login.clone(),
                        to: to.clone(),
                        from,
                        text,
                        expires_at,
                        next_try,
                        error: e.to_string(),
                        max_per_owner: u64::try_from(q.max_per_user).unwrap_or(u64::MAX),
                    };
                    match service.inbox.queue(op).await {
                        Ok(id) => {
                            tracing::info!(event = "queue", id, to = %LogSafe(&to), reason = %LogSafe(&e), "message queued");
                            Response::Queued {
                                id,
                                reason: e.to_string(),
                            }
                        }
                        Err(err @ InboxError::QueueFull(_)) => {
                            error(NetApiStatus::ERROR_REQ_NOT_ACCEP, format!("{e}; and {err}"))
                        }
                        Err(err) => error(NetApiStatus::NERR_INTERNAL_ERROR, err.to_string()),
                    }
                }
                Err(e) => error(e.status(), e.to_string()),
            }
        }
        Request::SentStatus { id } => match service
            .inbox
            .sent(id, caller.user.as_deref().map(|_| caller.login.as_str()))
            .await
        {
            Ok(Some(record)) => Response::SentStatus(record),
            Ok(None) => error(
                NetApiStatus::ERROR_INVALID_PARAMETER,
                format!("no message {id} sent by you"),
            ),
            Err(e) => error(NetApiStatus::NERR_INTERNAL_ERROR, e.to_string()),
        },
        Request::Queue { after_id, limit } => {
            let limit = limit.clamp(1, MAX_PAGE);
            let owner = caller.user.as_deref();
            // One more than the page, to tell whether more follow.
            match service
                .inbox
                .queued(owner, after_id.unwrap_or(0), limit + 1)
                .await
            {
                Ok(mut entries) => {
                    let mut more = entries.len() > limit;
                    entries.truncate(limit);
                    more |= fit_page(&mut entries);
                    Response::Queue { entries, more }
                }
                Err(e) => inbox_error(&e),
            }
        }
        Request::QueueCancel { id } => {
            let op = crate::store::QueueOp::Cancel {
                id,
                owner: caller.user.clone(),
            };
            match service.inbox.queue(op).await {
                Ok(1) => Response::Ok,
                Ok(_) => error(
                    NetApiStatus::ERROR_INVALID_PARAMETER,
                    format!("no waiting message {id} of yours in the queue"),
                ),
                Err(e) => error(NetApiStatus::NERR_INTERNAL_ERROR, e.to_string()),
            }
        }
        Request::InboxShown { id } => {
            let first = first_receipt(service, id, |m| m.shown_at).await;
            match service.inbox.mark_shown(id, caller.user.as_deref()).await {
                Ok(true) => {
                    let message = service.inbox.get(id, None).await.ok().flatten();
                    if let Some(m) = message.filter(|_| first) {
                        service.send_receipt(&m, netsend_proto::receipt::ReceiptState::Shown);
                    }
                    Response::Ok
                }
                Ok(false) => error(
                    NetApiStatus::ERROR_INVALID_PARAMETER,
                    format!("no message {id} in your inbox"),
                ),
                Err(e) => error(NetApiStatus::NERR_INTERNAL_ERROR, e.to_string()),
            }
        }
        Request::InboxDelete { ids, read } => {
            let deletion = crate::store::Deletion {
                ids,
                read,
                user: caller.user.clone(),
            };
            match service.inbox.delete(deletion).await {
                Ok(count) => Response::Deleted { count },
                Err(e) => error(NetApiStatus::NERR_INTERNAL_ERROR, e.to_string()),
            }
        }
        Request::Broadcast {
            domain,
            from,
            text,
            split,
        } => {
            let group = &service.config.broadcast_group;
            if !may_broadcast(caller, group) {
                let denied = crate::outbound::send::SendFailure::AccessDenied(format!(
                    "only root and members of the {group} group may broadcast"
                ));
                return error(denied.status(), denied.to_string());
            }
            let (from, text) = sender_identity(caller, from, text);
            let domain = domain.unwrap_or_else(|| service.config.workgroup.clone());
            match crate::outbound::datagrams::broadcast(
                &service.outbound,
                &domain,
                &from,
                &text,
                split,
            )
            .await
            {
                Ok(datagrams) => Response::Broadcast {
                    domain: domain.to_uppercase(),
                    datagrams,
                },
                Err(e) => error(e.status(), e.to_string()),
            }
        }
        Request::SendUsers { from, text } => {
            let group = &service.config.broadcast_group;
            if !may_broadcast(caller, group) {
                let denied = crate::outbound::send::SendFailure::AccessDenied(format!(
                    "only root and members of the {group} group may send to /USERS"
                ));
                return error(denied.status(), denied.to_string());
            }
            let (from, text) = sender_identity(caller, from, text);
            let samba = service.config.samba_config.clone();
            let logins = crate::system::users::logins(&service.config).await;
            let people = tokio::task::spawn_blocking(move || {
                crate::system::users::recipients(logins, samba.as_deref())
            })
            .await
            .unwrap_or_default();
            // Bounded fan-out: a few unreachable machines do not hold up the rest.
            let slots = Arc::new(tokio::sync::Semaphore::new(USERS_FAN_OUT));
            let mut sends = tokio::task::JoinSet::new();
            for (i, person) in people.into_iter().enumerate() {
                let (service, slots) = (service.clone(), slots.clone());
                let (from, text) = (from.clone(), text.clone());
                let uid = caller.uid;
                sends.spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    let sent = crate::outbound::send::send_to_session(
                        &service.outbound,
                        Some(uid),
                        &person.user,
                        person.client.as_deref(),
                        &from,
                        &text,
                    )
                    .await;
                    (i, person.user, sent)
                });
            }
            let mut outcomes = Vec::new();
            while let Some(joined) = sends.join_next().await {
                if let Ok(outcome) = joined {
                    outcomes.push(outcome);
                }
            }
            outcomes.sort_by_key(|(i, _, _)| *i);
            let mut delivered = Vec::new();
            let mut failed = Vec::new();
            for (_, user, sent) in outcomes {
                match sent {
                    Ok(report) => delivered.push(UserDelivery {
                        user,
                        address: report.address,
                    }),
                    Err(e) => failed.push(UserFailure {
                        user,
                        code: e.status().0,
                        detail: e.to_string(),
                    }),
                }
            }
            Response::Users { delivered, failed }
        }
        Request::Send { to, from, text } => {
            let (from, text) = sender_identity(caller, from, text);
            match crate::outbound::send::send(
                &service.outbound,
                Some(caller.uid),
                &to,
                &from,
                &text,
            )
            .await
            {
                Ok(mut report) => {
                    tracing::info!(event = "send", from = %LogSafe(&from), to = %LogSafe(&report.to), peer = %report.address, transport = "session", "message sent");
                    report.receipt_id = service
                        .record_sent(caller.login.clone(), &report, &from, &text)
                        .await;
                    Response::Sent(report)
                }
                Err(e) => {
                    tracing::info!(event = "send", from = %LogSafe(&from), to = %LogSafe(&to), reason = %LogSafe(&e), transport = "session", "message not sent");
                    error(e.status(), e.to_string())
                }
            }
        }
    }
}
