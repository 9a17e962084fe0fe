//! One function per command; each talks to the service through the control socket.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use netsend_control::config::ClientConfig;
use netsend_control::protocol::MAX_PAGE;
use netsend_control::types::{InboxSelection, Queued, StoredMessage};
use netsend_control::{client, remote, ClientError, Request, Response};
use netsend_proto::display::{reply_hint, sanitize, sanitize_first_line, sanitize_name as clean};
use netsend_service::config::Config;
use netsend_wire::status::NetApiStatus;

use crate::args::{Cli, Command, InboxAction, MessengerAction, QueueAction, RemoteAction};
use crate::conversations::{away, away_line, parse_since, reply, sent, thread, Shown};
use crate::Failure;

/// How long `messenger start` waits for the daemon to answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs one parsed command line.
pub(crate) fn run(cli: Cli) -> Result<(), Failure> {
    // Documentation needs no configuration (and must work with a broken one).
    match &cli.command {
        Command::Completions { shell } => return crate::docs::completions(*shell),
        Command::Manpage { out } => return crate::docs::manpages(out.as_deref()),
        _ => {}
    }
    let config_path = netsend_control::config::discover(cli.config.clone());
    let bad_config = |e: &dyn std::fmt::Display| {
        Failure::new(NetApiStatus::ERROR_INVALID_PARAMETER, e.to_string())
            .with_hint("fix the configuration file; README.md lists every key and its default")
    };
    // The whole file is checked as the service reads it, so a mistake
    // anywhere in it is reported by every command; client commands then use
    // only the client's keys.
    let config = Config::load(config_path.as_deref()).map_err(|e| bad_config(&e))?;
    if let Command::Messenger {
        action: MessengerAction::Start { foreground: true },
    } = cli.command
    {
        return start_foreground(config, config_path);
    }
    let client = ClientConfig::load(config_path.as_deref()).map_err(|e| bad_config(&e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(NetApiStatus::NERR_INTERNAL_ERROR, e.to_string()))?;
    let daemon = Daemon {
        config: &config,
        path: config_path.as_deref(),
    };
    runtime.block_on(dispatch(cli.command, &client, daemon))
}

/// What `messenger start` needs: the service's whole configuration and the
/// file it came from, passed on to the daemon.
struct Daemon<'a> {
    config: &'a Config,
    path: Option<&'a Path>,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Self::new(e.status(), e.to_string())
    }
}

/// Sends one request to the local service; a refusal is a [`Failure`].
pub(crate) async fn call(config: &ClientConfig, request: Request) -> Result<Response, Failure> {
    Ok(client::call(&config.control_socket, &request)
        .await
        .and_then(Response::into_result)?)
}

/// Sends one request to the local service, or with `server` to that host's
/// service over the remote-call channel.
async fn call_at(
    config: &ClientConfig,
    server: Option<&str>,
    request: Request,
) -> Result<Response, Failure> {
    let Some(server) = server else {
        return call(config, request).await;
    };
    let (config, server) = (config.clone(), server.to_owned());
    let answer = tokio::task::spawn_blocking(move || {
        remote::call_server(&config, &server, &request, REMOTE_TIMEOUT)
    })
    .await
    .map_err(|e| Failure::new(NetApiStatus::NERR_INTERNAL_ERROR, e.to_string()))?;
    Ok(answer
        .map_err(ClientError::from)
        .and_then(Response::into_result)?)
}

/// How long a remote call may take.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// The failure of an answer that does not fit the request.
pub(crate) fn unexpected(r: Response) -> Failure {
    Failure::new(
        NetApiStatus::NERR_INTERNAL_ERROR,
        format!("unexpected answer {r:?}"),
    )
}

async fn dispatch(
    command: Command,
    config: &ClientConfig,
    daemon: Daemon<'_>,
) -> Result<(), Failure> {
    match command {
        Command::Send {
            from,
            split,
            server,
            queue,
            expire,
            words,
        } => {
            let queue = queue.then_some(expire);
            send(config, from, split, server.as_deref(), queue, words).await
        }
        Command::Alert(args) => crate::alert::alert(config, args).await,
        Command::Status { id } => match call(config, Request::SentStatus { id })
            .await
            .map_err(|f| f.hint_if(INVALID, "ID is the number `netsend send` printed; only messages you sent from this host have one"))?
        {
            Response::SentStatus(r) => {
                let at = |t: Option<i64>| {
                    t.map_or_else(|| "not yet".to_owned(), |t| format!("{} UTC", when(t)))
                };
                println!(
                    "Message {} to {} ({}) from {}: delivered {} UTC, shown {}, read {}",
                    r.id,
                    clean(&r.to),
                    clean(&r.address),
                    clean(&r.from),
                    when(r.sent_at),
                    at(r.shown_at),
                    at(r.read_at)
                );
                if r.shown_at.is_none() && r.read_at.is_none() {
                    println!("(Receipts come only from netsend recipients that send them.)");
                }
                Ok(())
            }
            r => Err(unexpected(r)),
        },
        Command::Queue { action } => match action {
            Some(QueueAction::Cancel { id }) => {
                match call(config, Request::QueueCancel { id })
                    .await
                    .map_err(|f| f.hint_if(INVALID, QUEUE_IDS))?
                {
                    Response::Ok => {
                        println!("Queued message {id} was cancelled.");
                        Ok(())
                    }
                    r => Err(unexpected(r)),
                }
            }
            None => {
                // Page by page, so that no answer outgrows a control line.
                let mut after_id = None;
                let mut shown = 0;
                loop {
                    let request = Request::Queue {
                        after_id,
                        limit: MAX_PAGE,
                    };
                    let (entries, more) = match call(config, request).await? {
                        Response::Queue { entries, more } => (entries, more),
                        r => return Err(unexpected(r)),
                    };
                    for q in &entries {
                        print_queued(q);
                    }
                    shown += entries.len();
                    after_id = entries.last().map(|q| q.id).or(after_id);
                    if !more || entries.is_empty() {
                        break;
                    }
                }
                if shown == 0 {
                    println!("No queued messages.");
                }
                Ok(())
            }
        },
        Command::Name {
            alias,
            add,
            delete,
            server,
            forward,
            cancel,
        } => match (alias, forward, cancel) {
            (Some(name), host @ Some(_), _) | (Some(name), host @ None, true) => {
                forward_alias(config, name, host).await
            }
            (alias, _, _) => name(config, alias, add, delete, server.as_deref()).await,
        },
        Command::Remote {
            action: RemoteAction::Key,
        } => {
            let file = remote::user_key_file()
                .map_err(|e| Failure::new(NetApiStatus::ERROR_INVALID_PARAMETER, e.to_string()))?;
            let key = remote::KeyPair::load_or_create(&file)
                .map_err(|e| Failure::new(NetApiStatus::ERROR_INVALID_PARAMETER, e.to_string()))?;
            println!("{}", remote::public_key_text(&key.public));
            Ok(())
        }
        Command::Remote {
            action: RemoteAction::Trust { server, key },
        } => {
            let key = remote::parse_public_key(&key).map_err(|e| {
                Failure::new(NetApiStatus::ERROR_INVALID_PARAMETER, e.to_string())
                    .with_hint("give the key as `netsend messenger status` on that host prints it")
            })?;
            let address = remote::trust_server(config, &server, &key)
                .map_err(|e| Failure::new(NetApiStatus::ERROR_INVALID_PARAMETER, e.to_string()))?;
            let file = remote::user_known_servers()
                .map(|k| k.path().display().to_string())
                .unwrap_or_default();
            println!(
                "Calls to {server} ({address}) now accept only the key {} (recorded in {file}).",
                remote::public_key_text(&key)
            );
            Ok(())
        }
        Command::Inbox {
            json,
            unread,
            follow,
            search,
            newest,
            since,
            from,
            with,
            action,
        } => match action {
            Some(InboxAction::Read { id }) => {
                match call(config, Request::InboxRead { id })
                    .await
                    .map_err(|f| f.hint_if(INVALID, INBOX_IDS))?
                {
                    Response::Message(m) if json => print_json(&m),
                    Response::Message(m) => {
                        print_message_full(&m);
                        println!();
                        println!("{}", reply_hint(m.id));
                        Ok(())
                    }
                    r => Err(unexpected(r)),
                }
            }
            Some(InboxAction::Delete { ids, read }) => {
                if ids.is_empty() && !read {
                    return Err(Failure::new(
                        NetApiStatus::ERROR_INVALID_PARAMETER,
                        "nothing to delete: netsend inbox delete ID... or --read",
                    )
                    .with_hint(INBOX_IDS));
                }
                match call(config, Request::InboxDelete { ids, read })
                    .await
                    .map_err(|f| f.hint_if(INVALID, INBOX_IDS))?
                {
                    Response::Deleted { count } => {
                        println!("{count} message(s) deleted.");
                        Ok(())
                    }
                    r => Err(unexpected(r)),
                }
            }
            None => {
                let shown = Shown::new(newest);
                let since_ms = since.as_deref().map(parse_since).transpose()?;
                match with {
                    Some(with) => thread(config, json, &with, shown).await,
                    None => {
                        let listing = Listing {
                            json,
                            unread,
                            follow,
                            search,
                            since_ms,
                            from,
                        };
                        inbox(config, listing, shown).await
                    }
                }
            }
        },
        Command::Sent {
            json,
            search,
            newest,
            to,
        } => sent(config, json, search, to, Shown::new(newest)).await,
        Command::Reply { id, words } => reply(config, id, words).await,
        Command::Away { words } => away(config, words).await,
        Command::Agent => crate::agent::run(config, daemon.path).await,
        Command::Popup { id } => crate::popup::run(config, id).await,
        Command::View {
            host,
            domain,
            json,
            names,
        } => {
            let target = crate::view::Target::from_args(host, domain);
            crate::view::view(config, target, json, names).await
        }
        Command::Completions { .. } | Command::Manpage { .. } => Ok(()),
        Command::Messenger { action } => match action {
            MessengerAction::Start { .. } => start_daemon(daemon.config, daemon.path).await,
            MessengerAction::Stop => {
                call(config, Request::Stop).await?;
                let deadline = Instant::now() + START_TIMEOUT;
                while client::call(&config.control_socket, &Request::Status)
                    .await
                    .is_ok()
                    && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                println!("The Messenger service was stopped successfully.");
                Ok(())
            }
            MessengerAction::Status { json } => messenger_status(config, json).await,
        },
    }
}

/// `messenger status` as JSON: `running` and, when it runs, every field of
/// [`netsend_control::types::StatusInfo`]; when it does not, why.
#[derive(serde::Serialize)]
struct StatusJson<'a> {
    running: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    status: Option<&'a netsend_control::types::StatusInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `messenger status`: exits 0 when the service runs, 3 when it does not
/// (nothing listens on the control socket), 4 when it cannot be told.
async fn messenger_status(config: &ClientConfig, json: bool) -> Result<(), Failure> {
    let s = match call(config, Request::Status).await {
        Ok(Response::Status(s)) => s,
        Ok(r) => return Err(unexpected(r).with_exit(4)),
        Err(f) => {
            let code = if f.status == NetApiStatus::NERR_MSG_NOT_STARTED {
                3
            } else {
                4
            };
            if json {
                print_json(&StatusJson {
                    running: false,
                    status: None,
                    error: Some(f.status.to_string()),
                })?;
            }
            return Err(f.with_exit(code));
        }
    };
    if json {
        return print_json(&StatusJson {
            running: true,
            status: Some(&s),
            error: None,
        });
    }
    println!("The Messenger service is running (pid {}).", s.pid);
    println!("  computer name: {}", clean(&s.computer_name));
    println!("  workgroup:     {}", clean(&s.workgroup));
    println!("  session:       {}", s.session_addresses.join(", "));
    println!("  name service:  {}", s.name_addresses.join(", "));
    println!("  messages:      {}", s.messages);
    println!("  queued:        {}", s.queued);
    match &s.remote_key {
        Some(key) => println!(
            "  remote calls:  {} (key {key})",
            s.remote_addresses.join(", ")
        ),
        None => println!("  remote calls:  off"),
    }
    let reasons: Vec<String> = s
        .drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| format!("{} {n}", clean(reason)))
        .collect();
    if reasons.is_empty() {
        println!("  dropped:       {}", s.dropped);
    } else {
        println!("  dropped:       {} ({})", s.dropped, reasons.join(", "));
    }
    for away in &s.away {
        println!("  away:          {}", away_line(away));
    }
    match &s.alerts {
        Some(a) => println!(
            "  alerts:        {} raised, {} sent, {} suppressed ({} batched, {} capped)",
            a.raised,
            a.sent,
            a.suppressed(),
            a.batched,
            a.capped
        ),
        None => println!("  alerts:        off"),
    }
    if let Some(w) = &s.wins_server {
        println!(
            "  wins server:   {} names ({} held), {} granted, {} refused, {} challenges ({} defended, {} in flight), {} released, queries {} answered, {} unknown",
            w.names,
            w.held,
            w.counts.granted,
            w.counts.refused,
            w.counts.challenges,
            w.counts.defended,
            w.challenging,
            w.counts.released,
            w.counts.answered,
            w.counts.unknown
        );
    }
    let reload = &s.reload;
    match (reload.state.as_str(), reload.at) {
        ("applied" | "rejected", Some(at)) => {
            println!(
                "  reload:        {} at {} UTC",
                clean(&reload.state),
                when(at)
            );
        }
        _ => println!("  reload:        none since start"),
    }
    if let Some(error) = &reload.error {
        println!(
            "                 kept the running configuration: {}",
            clean(error)
        );
    }
    if !reload.restart_needed.is_empty() {
        let keys: Vec<String> = reload.restart_needed.iter().map(|k| clean(k)).collect();
        println!("                 needs a restart: {}", keys.join(", "));
    }
    println!("  names:");
    for n in &s.names {
        println!("    {:<16} {}", clean(&n.name), clean(&n.detail));
    }
    Ok(())
}

/// One line of `netsend queue`.
fn print_queued(q: &Queued) {
    let state = match q.state.as_str() {
        "queued" => format!(
            "queued, {} attempt(s), next at {} UTC, expires {} UTC",
            q.attempts,
            when(q.next_try),
            when(q.expires_at)
        ),
        "delivered" => format!("delivered at {} UTC", when(q.done_at.unwrap_or(0))),
        other => format!("{other} at {} UTC", when(q.done_at.unwrap_or(0))),
    };
    println!(
        "{:>5}  to {}: {}  [{}]",
        q.id,
        clean(&q.to),
        sanitize_first_line(&q.text),
        clean(&state)
    );
    if let (Some(e), "queued" | "expired") = (&q.last_error, q.state.as_str()) {
        println!("       last error: {}", clean(e));
    }
}

/// The text of a message given as `words` (joined with spaces; `-` alone
/// reads standard input, at most 64 KiB); `usage` says how, when empty.
pub(crate) fn message_text(words: Vec<String>, usage: &str) -> Result<String, Failure> {
    let text = if words.len() == 1 && words[0] == "-" {
        let mut s = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut s)
            .map_err(|e| Failure::new(NetApiStatus::ERROR_INVALID_PARAMETER, e.to_string()))?;
        s
    } else {
        words.join(" ")
    };
    if text.is_empty() {
        return Err(Failure::new(
            NetApiStatus::ERROR_INVALID_PARAMETER,
            format!("no message text: {usage}"),
        )
        .with_hint("give the text after the name, or `-` to read it from standard input"));
    }
    Ok(text)
}

async fn send(
    config: &ClientConfig,
    from: Option<String>,
    split: bool,
    server: Option<&str>,
    queue: Option<Option<u64>>,
    words: Vec<String>,
) -> Result<(), Failure> {
    // On another host the sender is named here: the target knows only a key.
    let from = match (server, from) {
        (Some(_), None) => Some(remote::login_name()),
        (_, from) => from,
    };
    let mut words = words.into_iter();
    let target = words.next().unwrap_or_default();
    let text = message_text(words.collect(), "netsend send NAME message words...")?;
    let lower = target.to_ascii_lowercase();
    if lower == "/users" {
        return match call_at(config, server, Request::SendUsers { from, text }).await? {
            Response::Users { delivered, failed } => {
                for d in &delivered {
                    println!(
                        "The message was successfully sent to {} ({}).",
                        clean(&d.user),
                        clean(&d.address)
                    );
                }
                if delivered.is_empty() && failed.is_empty() {
                    println!("No user has a session on this server.");
                }
                match failed.first() {
                    None => Ok(()),
                    Some(first) => {
                        // One line per person, so a long list stays readable.
                        for f in &failed {
                            eprintln!(
                                "Could not reach {}: {} ({})",
                                clean(&f.user),
                                NetApiStatus(f.code),
                                clean(&f.detail)
                            );
                        }
                        Err(Failure::new(
                            NetApiStatus(first.code),
                            format!(
                                "could not reach {} of {} people (listed above)",
                                failed.len(),
                                failed.len() + delivered.len()
                            ),
                        ))
                    }
                }
            }
            r => Err(unexpected(r)),
        };
    }
    let domain = match lower.as_str() {
        "*" | "/domain" => Some(None),
        _ => lower
            .strip_prefix("/domain:")
            .map(|_| Some(target["/domain:".len()..].to_owned())),
    };
    if let Some(domain) = domain {
        let request = Request::Broadcast {
            domain,
            from,
            text,
            split,
        };
        let response = call_at(config, server, request).await.map_err(|f| {
            if f.status == NetApiStatus::NERR_NETWORK_ERROR && server.is_none() {
                f.with_hint(
                    "broadcasts are UDP 138 datagrams: serve an interface with a broadcast address, or list [network] broadcast addresses or relays",
                )
            } else {
                f
            }
        })?;
        return match response {
            Response::Broadcast { domain, datagrams } => {
                println!(
                    "The message was broadcast to {} ({datagrams} datagram(s)).",
                    clean(&domain)
                );
                Ok(())
            }
            r => Err(unexpected(r)),
        };
    }
    let request = match queue {
        Some(expire_minutes) => Request::SendQueued {
            to: target,
            from,
            text,
            expire_minutes,
        },
        None => Request::Send {
            to: target,
            from,
            text,
        },
    };
    match call_at(config, server, request).await? {
        Response::Queued { id, reason } => {
            println!(
                "The name cannot be reached now ({}); the message is queued as {id} and will be tried again (netsend queue).",
                clean(&reason)
            );
            Ok(())
        }
        Response::Sent(report) => {
            println!(
                "The message was successfully sent to {} ({}).",
                clean(&report.to),
                clean(&report.address)
            );
            if report.verified {
                println!("It went verified: the recipient knows this host sent it.");
            }
            if let Some(id) = report.receipt_id {
                println!("Receipts (from a netsend recipient): netsend status {id}");
            }
            Ok(())
        }
        r => Err(unexpected(r)),
    }
}

async fn name(
    config: &ClientConfig,
    alias: Option<String>,
    add: bool,
    delete: bool,
    server: Option<&str>,
) -> Result<(), Failure> {
    let request = match (alias, add, delete) {
        (Some(name), true, _) => Request::NameAdd { name },
        (Some(name), _, true) => Request::NameDel { name },
        (Some(name), false, false) => Request::NameAdd { name },
        (None, _, _) => Request::Names,
    };
    let verb = match &request {
        Request::NameDel { name } => format!(
            "The message alias {} was deleted successfully.",
            clean(&name.to_uppercase())
        ),
        Request::NameAdd { name } => format!(
            "The message alias {} was added successfully.",
            clean(&name.to_uppercase())
        ),
        _ => String::new(),
    };
    match call_at(config, server, request).await? {
        Response::Names {
            names,
            notices,
            away,
        } => {
            for notice in notices {
                eprintln!("netsend: note: {notice}");
            }
            println!("{:<16} {:<10} {:<12} Network", "Name", "Kind", "Owner");
            println!("{}", "-".repeat(70));
            for a in names {
                let kind = serde_json::to_value(a.alias.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                let owner = a.alias.owner.unwrap_or_else(|| "(all users)".into());
                let forward = a
                    .forward
                    .map(|host| format!(", forwarded to {}", clean(&host)))
                    .unwrap_or_default();
                println!(
                    "{:<16} {:<10} {:<12} {}{forward}",
                    clean(&a.alias.name),
                    clean(&kind),
                    clean(&owner),
                    clean(&a.network)
                );
            }
            if let Some(away) = away {
                println!();
                println!("{}", away_line(&away));
            }
            Ok(())
        }
        Response::Ok => {
            println!("{verb}");
            Ok(())
        }
        r => Err(unexpected(r)),
    }
}

async fn forward_alias(
    config: &ClientConfig,
    name: String,
    host: Option<String>,
) -> Result<(), Failure> {
    let done = match &host {
        Some(host) => format!(
            "Messages to {} are forwarded to {}.",
            clean(&name.to_uppercase()),
            clean(host)
        ),
        None => format!(
            "The forward of {} was cancelled.",
            clean(&name.to_uppercase())
        ),
    };
    match call(config, Request::NameForward { name, host })
        .await
        .map_err(|f| f.hint_if(INVALID, "forward one of your aliases here to another host: its NetBIOS name or IPv4 address"))?
    {
        Response::Ok => {
            println!("{done}");
            Ok(())
        }
        r => Err(unexpected(r)),
    }
}

/// ERROR_INVALID_PARAMETER, which several commands give their own hint.
const INVALID: NetApiStatus = NetApiStatus::ERROR_INVALID_PARAMETER;
/// The hint for an inbox command given an id that is not there.
const INBOX_IDS: &str = "`netsend inbox` lists your messages with their IDs";
/// The hint for a queue command given an id that is not there.
const QUEUE_IDS: &str = "`netsend queue` lists your queued messages with their IDs";

/// Messages fetched per control request.
const INBOX_PAGE: usize = MAX_PAGE;

/// How long one `inbox --follow` request waits in the service for a new
/// message before asking again.
const FOLLOW_WAIT_MS: u64 = 30_000;
/// First pause of `inbox --follow` after the service stopped answering.
const FOLLOW_MIN_RETRY: Duration = Duration::from_millis(250);
/// Longest pause between its attempts to reach the service again.
const FOLLOW_MAX_RETRY: Duration = Duration::from_secs(10);

/// What `netsend inbox` lists (beyond how many: [`Shown`]).
pub(crate) struct Listing {
    /// JSON rather than lines.
    pub(crate) json: bool,
    /// Only unread messages.
    pub(crate) unread: bool,
    /// Keep following new messages.
    pub(crate) follow: bool,
    /// Only messages containing this.
    pub(crate) search: Option<String>,
    /// Only messages received since then, Unix ms.
    pub(crate) since_ms: Option<i64>,
    /// Only messages from this sender.
    pub(crate) from: Option<String>,
}

impl Listing {
    /// The request for a page of at most `limit`: after `after_id` (the
    /// service waiting up to `wait_ms` for one), or with `select.newest`
    /// the newest before `select.before_id`.
    fn request(
        &self,
        after_id: Option<i64>,
        limit: usize,
        wait_ms: u64,
        select: InboxSelection,
    ) -> Request {
        Request::InboxList {
            unread_only: self.unread,
            after_id,
            limit,
            search: self.search.clone(),
            wait_ms,
            select: InboxSelection {
                since_ms: self.since_ms,
                from: self.from.clone(),
                ..select
            },
        }
    }
}

/// Every message `listing` selects after `after_id`, page by page; when
/// there is none yet, the service waits up to `wait_ms` for one.
pub(crate) async fn fetch_messages(
    config: &ClientConfig,
    listing: &Listing,
    mut after_id: Option<i64>,
    wait_ms: u64,
) -> Result<Vec<StoredMessage>, Failure> {
    let mut all = Vec::new();
    loop {
        let wait = if all.is_empty() { wait_ms } else { 0 };
        let request = listing.request(after_id, INBOX_PAGE, wait, InboxSelection::default());
        let (page, more) = match call(config, request).await? {
            Response::Messages { messages, more, .. } => (messages, more),
            r => return Err(unexpected(r)),
        };
        // A page cut short by its size in bytes says so.
        let full = page.len() == INBOX_PAGE || more && !page.is_empty();
        after_id = page.last().map(|m| m.id).or(after_id);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

/// The newest `n` messages `listing` selects, oldest first, paged back
/// from the newest, and how many it selects in all.
pub(crate) async fn fetch_newest(
    config: &ClientConfig,
    listing: &Listing,
    n: usize,
) -> Result<(Vec<StoredMessage>, u64), Failure> {
    let mut newest: Vec<StoredMessage> = Vec::new();
    let mut before_id = None;
    let mut total = 0;
    while newest.len() < n {
        let select = InboxSelection {
            before_id,
            newest: true,
            count: before_id.is_none(),
            ..InboxSelection::default()
        };
        let limit = (n - newest.len()).min(INBOX_PAGE);
        let (page, more, counted) =
            match call(config, listing.request(None, limit, 0, select)).await? {
                Response::Messages {
                    messages,
                    more,
                    total,
                } => (messages, more, total),
                r => return Err(unexpected(r)),
            };
        total = counted.unwrap_or(total);
        let Some(first) = page.first() else { break };
        before_id = Some(first.id);
        let ended = page.len() < limit && !more;
        newest.splice(0..0, page);
        if ended {
            break;
        }
    }
    Ok((newest, total))
}

/// `netsend inbox`: the selection, then with `--follow` every new message
/// as it is stored.
async fn inbox(config: &ClientConfig, listing: Listing, shown: Shown) -> Result<(), Failure> {
    let (messages, total) = match shown.count {
        None => (fetch_messages(config, &listing, None, 0).await?, None),
        Some(n) => {
            let (messages, total) = fetch_newest(config, &listing, n).await?;
            (messages, Some(total))
        }
    };
    if listing.json && !listing.follow {
        return print_json(&messages);
    }
    if messages.is_empty() && !listing.follow && !listing.json {
        println!("There are no messages.");
    }
    for m in &messages {
        if listing.json {
            print_json(m)?;
        } else {
            print_message_line(m);
        }
    }
    if !listing.json {
        shown.footer(messages.len(), total, "inbox", "message");
        if !messages.is_empty() {
            println!("{}", reply_hint("ID"));
        }
    }
    let _ = std::io::stdout().flush();
    if listing.follow {
        follow(config, &listing, messages.last().map(|m| m.id)).await
    } else {
        Ok(())
    }
}

/// `inbox --follow`: prints each message after `after_id` as it is stored,
/// across restarts of the service.
async fn follow(
    config: &ClientConfig,
    listing: &Listing,
    mut after_id: Option<i64>,
) -> Result<(), Failure> {
    let mut retry = FOLLOW_MIN_RETRY;
    let mut lost = false;
    loop {
        let fetched = fetch_messages(config, listing, after_id, FOLLOW_WAIT_MS).await;
        // A follower outlives a restart of the service: it says so once and
        // tries again, pausing longer each time.
        let messages = match fetched {
            Err(e) if e.is_unreachable() => {
                if !lost {
                    eprintln!("netsend: the messenger service does not answer; trying again");
                    lost = true;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(FOLLOW_MAX_RETRY);
                continue;
            }
            fetched => fetched?,
        };
        if std::mem::take(&mut lost) {
            eprintln!("netsend: the messenger service answers again");
            retry = FOLLOW_MIN_RETRY;
        }
        if let Some(last) = messages.last() {
            after_id = Some(last.id);
        }
        for m in &messages {
            if listing.json {
                print_json(m)?;
            } else {
                print_message_line(m);
            }
        }
        let _ = std::io::stdout().flush();
    }
}

/// Prints `value` as one line of JSON whose raw bytes hold no control
/// character: C0, DEL, C1 and bidirectional controls are `\uXXXX` escapes.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let s = netsend_control::json::to_line(value)
        .map_err(|e| Failure::new(NetApiStatus::NERR_INTERNAL_ERROR, e.to_string()))?;
    println!("{s}");
    Ok(())
}

/// A Unix ms time as `YYYY-MM-DD HH:MM:SS` (UTC).
pub(crate) fn when(ms: i64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// One line of `netsend inbox` (and `--follow`): names, the trust mark and
/// the text's first line sanitised.
pub(crate) fn print_message_line(m: &StoredMessage) {
    println!(
        "{:>5}  {} UTC  {:<5}  {} -> {}{}  [{}]  {}",
        m.id,
        when(m.received_at),
        m.state(),
        clean(&m.from),
        clean(&m.to),
        if m.read { "" } else { " *" },
        m.trust_mark(),
        sanitize_first_line(&m.text)
    );
}

fn print_message_full(m: &StoredMessage) {
    let kind = if netsend_proto::alert::is_alert(&m.text) {
        "Alert"
    } else {
        "Message"
    };
    println!(
        "{kind} from {} to {} on {} UTC",
        clean(&m.from),
        clean(&m.to),
        when(m.received_at)
    );
    println!(
        "(id {}, from {} via {:?})",
        m.id,
        clean(&m.source),
        m.transport
    );
    println!("sender: {}", m.trust_mark());
    let receipt =
        |at: Option<i64>| at.map_or_else(|| "not yet".to_owned(), |t| format!("{} UTC", when(t)));
    println!(
        "receipt: stored {} UTC, shown {}, read {}",
        when(m.received_at),
        receipt(m.shown_at),
        receipt(m.read_at)
    );
    println!();
    println!("{}", sanitize(&m.text).trim_end_matches('\n'));
}

/// The socket journald listens on.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Whether log events go to journald now (else to stderr); a reload sets
/// it from `[log] journald` ([`apply_logging`]).
static TO_JOURNAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the journal's layer could be built at start (its socket was
/// there): only then can a reload switch to it.
static JOURNAL_OPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Logs to journald (fields EVENT, FROM, TO, PEER, ID, REASON, TRANSPORT) when
/// `[log] journald` is set and the journal runs, else to stderr. Both
/// outputs are set up when the journal runs, so that a reload can switch.
fn init_logging(config: &Config) {
    use std::sync::atomic::Ordering;
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("NETSEND_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let journal = if Path::new(JOURNAL_SOCKET).exists() {
        match tracing_journald::layer() {
            Ok(journal) => Some(
                journal
                    .with_syslog_identifier("netsend".into())
                    // EVENT=drop, not the crate's default F_EVENT=drop.
                    .with_field_prefix(None)
                    .with_filter(filter_fn(|_| TO_JOURNAL.load(Ordering::Relaxed))),
            ),
            Err(e) => {
                if config.log.journald {
                    eprintln!("netsend: journald unavailable ({e}); logging to stderr");
                }
                None
            }
        }
    } else {
        None
    };
    JOURNAL_OPEN.store(journal.is_some(), Ordering::Relaxed);
    apply_logging(config);
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(|| EscapedStderr)
        .with_filter(filter_fn(|_| !TO_JOURNAL.load(Ordering::Relaxed)));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(journal)
        .with(stderr)
        .try_init();
}

/// Sends the log to journald or to stderr as `[log] journald` says (at
/// start, and again at each reload).
fn apply_logging(config: &Config) {
    use std::sync::atomic::Ordering;
    let journal = config.log.journald && JOURNAL_OPEN.load(Ordering::Relaxed);
    if config.log.journald && !journal {
        tracing::warn!(
            "[log] journald is on but the journal was not running at start; logging to stderr"
        );
    }
    TO_JOURNAL.store(journal, Ordering::Relaxed);
}

/// Standard error for log lines (the daemon's is `netsend.log`): the
/// formatter hands over each event whole, and every control character in it
/// except the final line feed is written escaped
/// ([`netsend_proto::display::escape_log`]), so no field, whatever a peer
/// put in it, can start a forged line or drive the reader's terminal.
struct EscapedStderr;

impl Write for EscapedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let line = netsend_proto::display::escape_log(body) + end;
        std::io::stderr().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn start_foreground(
    config: Config,
    config_path: Option<std::path::PathBuf>,
) -> Result<(), Failure> {
    // Before any thread runs: it takes the variables out of the environment.
    let notifier = netsend_service::system::notify::Notifier::take_from_env();
    init_logging(&config);
    let fail = |e: String| Failure::new(NetApiStatus::NERR_MSG_INIT_FAILED, e);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fail(e.to_string()))?;
    runtime.block_on(async move {
        let listeners = netsend_service::start::Listeners::bind(&config).map_err(|e| match e {
            netsend_service::start::StartError::AlreadyRunning(_) => {
                Failure::new(NetApiStatus::NERR_MSG_ALREADY_STARTED, e.to_string())
            }
            e => fail(e.to_string()),
        })?;
        let session: Vec<String> = listeners
            .session_addresses()
            .iter()
            .map(ToString::to_string)
            .collect();
        let names: Vec<String> = listeners
            .name_addresses()
            .iter()
            .map(ToString::to_string)
            .collect();
        let metrics = listeners
            .metrics_address()
            .map_or_else(String::new, |a| format!(" metrics={a}"));
        let ready = format!(
            "ready computer={} session={} name={} control={}{metrics}",
            config.computer_name,
            session.join(","),
            names.join(","),
            config.control_socket.display()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| fail(format!("cannot watch SIGTERM: {e}")))?;
        // Watched from here on: SIGHUP's default action would end the service.
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| fail(format!("cannot watch SIGHUP: {e}")))?;
        let (reload, reloads) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                // One pending reload reads the file as it is when it runs.
                let _ = reload.try_send(());
            }
        });
        let supervision = netsend_service::start::Supervision {
            notifier,
            reloads,
            reread: Box::new(move || Config::load(config_path.as_deref())),
            on_reload: Box::new(apply_logging),
        };
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        netsend_service::start::run(
            config,
            listeners,
            move || {
                println!("{ready}");
                let _ = std::io::stdout().flush();
            },
            supervision,
            stop,
        )
        .await
        .map_err(|e| fail(e.to_string()))
    })
}

async fn start_daemon(config: &Config, config_path: Option<&Path>) -> Result<(), Failure> {
    if client::call(&config.control_socket, &Request::Status)
        .await
        .is_ok()
    {
        return Err(Failure::new(
            NetApiStatus::NERR_MSG_ALREADY_STARTED,
            "it answers on its control socket",
        ));
    }
    let fail = |e: String| Failure::new(NetApiStatus::NERR_MSG_INIT_FAILED, e);
    std::fs::create_dir_all(&config.state_dir)
        .map_err(|e| fail(format!("{}: {e}", config.state_dir.display())))?;
    let log_path = config.state_dir.join("netsend.log");
    let log = netsend_service::system::privileges::open_log(&log_path)
        .map_err(|e| fail(format!("{}: {e}", log_path.display())))?;
    let exe = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
    let mut command = std::process::Command::new(exe);
    if let Some(path) = config_path {
        command.arg("--config").arg(path);
    }
    use std::os::unix::process::CommandExt;
    let mut child = command
        .args(["messenger", "start", "--foreground"])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| fail(e.to_string()))?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Response::Status(s)) =
            client::call(&config.control_socket, &Request::Status).await
        {
            println!(
                "The Messenger service was started successfully (pid {}).",
                s.pid
            );
            println!(
                "  computer name {}, session service on {}",
                s.computer_name,
                s.session_addresses.join(", ")
            );
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(fail(format!(
                "the service exited ({status}):\n{}",
                tail.join("\n")
            )));
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "no answer after {START_TIMEOUT:?}; see {}",
                log_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
