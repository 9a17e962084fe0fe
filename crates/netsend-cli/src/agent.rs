//! `netsend agent`: desktop notifications for the user running it.
//!
//! The agent runs inside a graphical session as that session's user (XDG
//! autostart, `packaging/netsend-agent.desktop`), so the service never touches
//! anyone's session bus. It follows the user's inbox over the control socket,
//! as `netsend inbox --follow` does (each request waits in the service until
//! a message is stored, so nothing is polled), starting after the newest message there
//! when it first reaches the service (but first showing the user's own
//! messages that arrived while they were away and were never shown, up to
//! `[display] pending_hours` old), and shows each new message with
//! `org.freedesktop.Notifications.Notify` on the user's session bus
//! (`DBUS_SESSION_BUS_ADDRESS`), recording the receipt "shown". When the service goes away (a restart) it
//! tries again with a growing pause, capped at [`MAX_BACKOFF`]; when the
//! session bus goes away (logout) it exits.
//!
//! Where the notification server lists `actions` in its capabilities, each
//! notification offers "Reply" and "Mark read", and the agent listens on the
//! bus for `ActionInvoked`, `NotificationReplied` and `NotificationClosed`.
//! "Mark read" marks the message read (`InboxRead`); "Reply" is answered in
//! the notification itself where the server advertises `inline-reply`, else
//! it opens `netsend popup --id ID` in the user's terminal emulator
//! (`$TERMINAL`, else `x-terminal-emulator`), else it says what to run.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::StreamExt as _;

use netsend_control::config::ClientConfig;
use netsend_control::protocol::MAX_PAGE;
use netsend_control::types::StoredMessage;
use netsend_control::{client, Request, Response};
use netsend_proto::display::{reply_hint, sanitize_name, Shown as ShownText};
use netsend_service::delivery::terminals::shown;
use netsend_wire::status::NetApiStatus;
use zbus::zvariant::Value;

use crate::Failure;

/// How long one inbox request waits in the service for a new message; the
/// session bus is checked between requests.
const WAIT: Duration = Duration::from_secs(10);
/// First pause after the service stopped answering.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between attempts to reach the service again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the session bus is checked while nothing arrives.
const BUS_CHECK: Duration = Duration::from_secs(10);

const NOTIFICATIONS: &str = "org.freedesktop.Notifications";
const NOTIFICATIONS_PATH: &str = "/org/freedesktop/Notifications";

/// The action key of "Reply" when the server answers in the notification.
const INLINE_REPLY: &str = "inline-reply";
/// The action key of "Reply" otherwise.
const REPLY: &str = "reply";
/// The action key of "Mark read".
const MARK_READ: &str = "mark-read";
/// Most notifications whose actions are remembered (the oldest go first).
const MAX_PENDING: usize = 256;

/// The message ids of the notifications on screen, by notification id.
type Pending = Arc<Mutex<BTreeMap<u32, i64>>>;

/// Runs the agent until the session bus goes away; `config_path` is passed
/// on to the `netsend popup` a Reply action opens.
pub(crate) async fn run(config: &ClientConfig, config_path: Option<&Path>) -> Result<(), Failure> {
    let bus = zbus::Connection::session().await.map_err(|e| {
        Failure::new(
            NetApiStatus::ERROR_NOT_SUPPORTED,
            format!("cannot reach the session bus: {e}"),
        )
        .with_hint("run `netsend agent` inside your graphical session (DBUS_SESSION_BUS_ADDRESS)")
    })?;
    let pending: Pending = Arc::default();
    // Listening starts before the first notification, so no click is missed.
    let signals = notification_signals(&bus).await.map_err(|e| {
        Failure::new(
            NetApiStatus::ERROR_NOT_SUPPORTED,
            format!("cannot listen to the notification server: {e}"),
        )
    })?;
    tokio::spawn(answer_actions(
        signals,
        bus.clone(),
        config.clone(),
        config_path.map(Path::to_path_buf),
        Arc::clone(&pending),
    ));
    let mut after_id: Option<i64> = None;
    let mut backoff = MIN_BACKOFF;
    let mut reachable = true;
    let mut bus_checked = Instant::now();
    loop {
        let step = match after_id {
            None => newest_id(config).await.map(|(id, waiting)| {
                eprintln!("netsend agent: following the inbox after message {id}");
                after_id = Some(id);
                waiting
            }),
            Some(id) => page(config, Some(id), WAIT).await,
        };
        match step {
            Ok(messages) => {
                if !reachable {
                    eprintln!("netsend agent: the messenger service answers again");
                }
                reachable = true;
                backoff = MIN_BACKOFF;
                for m in messages {
                    after_id = after_id.max(Some(m.id));
                    match notify(&bus, &shown(&m), m.id).await {
                        // Said only once the receipt is recorded, so whoever
                        // reads this line finds `shown_at` set in the inbox.
                        Ok(notification) => {
                            remember(&pending, notification, &m);
                            mark_shown(config, m.id).await;
                        }
                        Err(e) => eprintln!(
                            "netsend agent: message {}: {}",
                            m.id,
                            sanitize_name(&e.to_string())
                        ),
                    }
                }
            }
            Err(e) => {
                if reachable {
                    eprintln!(
                        "netsend agent: {}; trying again",
                        sanitize_name(&e.to_string())
                    );
                }
                reachable = false;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        if bus_checked.elapsed() >= BUS_CHECK {
            bus_checked = Instant::now();
            bus_alive(&bus).await?;
        }
    }
}

/// The session bus still answers; otherwise the session is over.
async fn bus_alive(bus: &zbus::Connection) -> Result<(), Failure> {
    bus.call_method(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        Some("org.freedesktop.DBus"),
        "GetId",
        &(),
    )
    .await
    .map(drop)
    .map_err(|e| {
        Failure::new(
            NetApiStatus::NERR_NETWORK_ERROR,
            format!("the session bus went away: {e}"),
        )
    })
}

/// One page of the inbox after `after_id`; when there is nothing yet, the
/// service waits up to `wait` for a new message before answering.
async fn page(
    config: &ClientConfig,
    after_id: Option<i64>,
    wait: Duration,
) -> Result<Vec<StoredMessage>, String> {
    let request = Request::InboxList {
        unread_only: false,
        after_id,
        limit: MAX_PAGE,
        search: None,
        wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        select: netsend_control::types::InboxSelection::default(),
    };
    match client::call(&config.control_socket, &request).await {
        Ok(Response::Messages { messages, .. }) => Ok(messages),
        Ok(Response::Error { code, detail }) => Err(format!("{}: {detail}", NetApiStatus(code))),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The id of the newest message visible to us (0 when there is none), and
/// the messages kept for us while we were away: our own, unread, never shown,
/// and at most `[display] pending_hours` old (store-and-forward).
async fn newest_id(config: &ClientConfig) -> Result<(i64, Vec<StoredMessage>), String> {
    let me = netsend_control::remote::login_name();
    let hours = i64::try_from(config.display.pending_hours).unwrap_or(0);
    let since = netsend_service::store::now_ms().saturating_sub(hours * 3_600_000);
    let mut newest = 0;
    let mut waiting = Vec::new();
    loop {
        let messages = page(config, Some(newest), Duration::ZERO).await?;
        let full = messages.len() == MAX_PAGE;
        newest = messages.last().map_or(newest, |m| m.id);
        waiting.extend(messages.into_iter().filter(|m| {
            hours > 0
                && !m.read
                && m.shown_at.is_none()
                && m.received_at >= since
                && m.recipient_user.as_deref() == Some(me.as_str())
        }));
        if !full {
            return Ok((newest, waiting));
        }
    }
}

/// Records the receipt "shown" for message `id`, then says so.
async fn mark_shown(config: &ClientConfig, id: i64) {
    let request = Request::InboxShown { id };
    let failure = match client::call(&config.control_socket, &request).await {
        Ok(Response::Error { code, detail }) => format!("{}: {detail}", NetApiStatus(code)),
        Ok(_) => {
            eprintln!("netsend agent: shown message {id}");
            return;
        }
        Err(e) => e.to_string(),
    };
    eprintln!(
        "netsend agent: message {id} was shown but its receipt was not recorded: {}",
        sanitize_name(&failure)
    );
}

/// Shows message `id`: critical and until dismissed for a broadcast, normal
/// urgency and the server's own timeout otherwise; with "Reply" and "Mark
/// read" where the server shows actions. The body is escaped when the server
/// reads markup, and ends with how to reply. Returns the notification's id.
async fn notify(bus: &zbus::Connection, message: &ShownText<'_>, id: i64) -> zbus::Result<u32> {
    let capabilities: Vec<String> = bus
        .call_method(
            Some(NOTIFICATIONS),
            NOTIFICATIONS_PATH,
            Some(NOTIFICATIONS),
            "GetCapabilities",
            &(),
        )
        .await?
        .body()
        .deserialize()?;
    let markup = capabilities.iter().any(|c| c == "body-markup");
    let actions = actions(&capabilities);
    let (urgency, expire_timeout): (u8, i32) = if message.is_critical() {
        (2, 0)
    } else {
        (1, -1)
    };
    let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
    hints.insert("urgency", Value::U8(urgency));
    hints.insert("category", Value::from("im.received"));
    hints.insert("desktop-entry", Value::from("netsend-agent"));
    let summary = message.summary();
    let body = format!("{}\n{}", message.notification_body(markup), reply_hint(id));
    post(bus, &summary, &body, actions, hints, expire_timeout).await
}

/// `Notify` with app name `netsend`; the notification's id.
async fn post(
    bus: &zbus::Connection,
    summary: &str,
    body: &str,
    actions: Vec<&str>,
    hints: HashMap<&str, Value<'_>>,
    expire_timeout: i32,
) -> zbus::Result<u32> {
    bus.call_method(
        Some(NOTIFICATIONS),
        NOTIFICATIONS_PATH,
        Some(NOTIFICATIONS),
        "Notify",
        &(
            "netsend",
            0u32,
            "",
            summary,
            body,
            actions,
            hints,
            expire_timeout,
        ),
    )
    .await?
    .body()
    .deserialize()
}

/// The actions a notification offers (key, label, key, label...): none
/// unless the server lists `actions`; Reply answers inline where it lists
/// `inline-reply`.
fn actions(capabilities: &[String]) -> Vec<&'static str> {
    let has = |c: &str| capabilities.iter().any(|x| x == c);
    if !has("actions") {
        return Vec::new();
    }
    let reply = if has(INLINE_REPLY) {
        INLINE_REPLY
    } else {
        REPLY
    };
    vec![reply, "Reply", MARK_READ, "Mark read"]
}

/// Remembers which message notification `notification` shows, forgetting
/// the oldest beyond [`MAX_PENDING`].
fn remember(pending: &Pending, notification: u32, m: &StoredMessage) {
    let mut pending = pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    pending.insert(notification, m.id);
    while pending.len() > MAX_PENDING {
        pending.pop_first();
    }
}

/// The notification server's signals, as they come.
async fn notification_signals(bus: &zbus::Connection) -> zbus::Result<zbus::MessageStream> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(NOTIFICATIONS)?
        .path(NOTIFICATIONS_PATH)?
        .build();
    zbus::MessageStream::for_match_rule(rule, bus, Some(64)).await
}

/// What a signal about one of our notifications asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Act {
    /// Mark the message read.
    MarkRead(i64),
    /// Open `netsend popup --id` on it.
    OpenPopup(i64),
    /// Send `text` in answer to it.
    Reply(i64, String),
    /// The notification is gone: forget it.
    Forget,
}

/// The act a signal `member` with these `args` asks of the notification
/// of message `id`: `ActionInvoked` (key), `NotificationReplied` (text) or
/// `NotificationClosed`.
fn act(member: &str, key_or_text: Option<&str>, id: i64) -> Option<Act> {
    match (member, key_or_text) {
        ("ActionInvoked", Some(MARK_READ)) => Some(Act::MarkRead(id)),
        ("ActionInvoked", Some(REPLY)) => Some(Act::OpenPopup(id)),
        ("NotificationReplied", Some(text)) if !text.trim().is_empty() => {
            Some(Act::Reply(id, text.to_owned()))
        }
        ("NotificationClosed", _) => Some(Act::Forget),
        _ => None,
    }
}

/// Carries out what the user clicked or typed in our notifications.
async fn answer_actions(
    mut signals: zbus::MessageStream,
    bus: zbus::Connection,
    config: ClientConfig,
    config_path: Option<PathBuf>,
    pending: Pending,
) {
    while let Some(Ok(message)) = signals.next().await {
        let header = message.header();
        let Some(member) = header.member().map(|m| m.to_string()) else {
            continue;
        };
        let body = message.body();
        let (notification, arg): (u32, Option<String>) = match member.as_str() {
            "ActionInvoked" | "NotificationReplied" => match body.deserialize::<(u32, String)>() {
                Ok((n, s)) => (n, Some(s)),
                Err(_) => continue,
            },
            "NotificationClosed" => match body.deserialize::<(u32, u32)>() {
                Ok((n, _)) => (n, None),
                Err(_) => continue,
            },
            _ => continue,
        };
        let id = pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&notification)
            .copied();
        let Some(id) = id else { continue };
        match act(&member, arg.as_deref(), id) {
            Some(Act::Forget) => {
                pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&notification);
            }
            Some(Act::MarkRead(id)) => mark_read(&config, id).await,
            Some(Act::OpenPopup(id)) => open_popup(&bus, config_path.as_deref(), id).await,
            Some(Act::Reply(id, text)) => reply(&config, id, text).await,
            None => {}
        }
    }
}

/// Runs the request of an action; its answer, or `None` after a line on
/// stderr saying what `failed`.
async fn act_on(config: &ClientConfig, request: Request, failed: &str) -> Option<Response> {
    match crate::cmd::call(config, request).await {
        Ok(answer) => Some(answer),
        Err(f) => {
            eprintln!(
                "netsend agent: {failed}: {}",
                sanitize_name(&format!("{} {}", f.status, f.detail()))
            );
            None
        }
    }
}

/// "Mark read": the message is read, as `netsend inbox read` leaves it.
async fn mark_read(config: &ClientConfig, id: i64) {
    let failed = format!("message {id} could not be marked read");
    match act_on(config, Request::InboxRead { id }, &failed).await {
        Some(Response::Message(_)) => eprintln!("netsend agent: marked message {id} read"),
        Some(other) => eprintln!("netsend agent: {failed}: unexpected answer {other:?}"),
        None => {}
    }
}

/// An inline reply: to the message's sender, as `netsend reply` sends it.
async fn reply(config: &ClientConfig, id: i64, text: String) {
    let failed = format!("the reply to message {id} failed");
    match act_on(config, Request::Reply { id, text }, &failed).await {
        Some(Response::Replied(report)) => eprintln!(
            "netsend agent: replied to message {id} ({})",
            sanitize_name(&report.sent.to)
        ),
        Some(other) => eprintln!("netsend agent: {failed}: unexpected answer {other:?}"),
        None => {}
    }
}

/// The terminal emulator to open the popup in: `$TERMINAL`, else
/// `x-terminal-emulator` when it is on `PATH`.
fn terminal_emulator(terminal: Option<String>, path: Option<&std::ffi::OsStr>) -> Option<String> {
    if let Some(t) = terminal.filter(|t| !t.trim().is_empty()) {
        return Some(t);
    }
    let path = path?;
    std::env::split_paths(path)
        .map(|dir| dir.join("x-terminal-emulator"))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// "Reply" without inline reply: `netsend popup --id ID` in a terminal
/// emulator, or, with none, a notification saying what to run.
async fn open_popup(bus: &zbus::Connection, config_path: Option<&Path>, id: i64) {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("netsend"));
    let mut popup = vec![exe.display().to_string()];
    if let Some(path) = config_path {
        popup.extend(["--config".to_owned(), path.display().to_string()]);
    }
    popup.extend(["popup".to_owned(), "--id".to_owned(), id.to_string()]);
    let terminal = terminal_emulator(
        std::env::var("TERMINAL").ok(),
        std::env::var_os("PATH").as_deref(),
    );
    let spawned = terminal.as_ref().map(|t| {
        tokio::process::Command::new(t)
            .arg("-e")
            .args(&popup)
            .stdin(std::process::Stdio::null())
            .spawn()
    });
    match spawned {
        Some(Ok(mut child)) => {
            eprintln!(
                "netsend agent: opened `netsend popup --id {id}` in {}",
                terminal.unwrap_or_default()
            );
            // Reaped when it ends.
            tokio::spawn(async move { child.wait().await });
        }
        failed => {
            if let Some(Err(e)) = failed {
                eprintln!(
                    "netsend agent: cannot start {}: {e}",
                    terminal.unwrap_or_default()
                );
            }
            let run = format!("netsend popup --id {id}");
            eprintln!("netsend agent: no terminal emulator; to reply, run `{run}`");
            let body =
                format!("No terminal emulator found ($TERMINAL, x-terminal-emulator). Run: {run}");
            let shown = post(bus, "To reply", &body, Vec::new(), HashMap::new(), -1).await;
            if let Err(e) = shown {
                eprintln!("netsend agent: {}", sanitize_name(&e.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::popup::tests::message;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn actions_only_where_the_server_shows_them() {
        assert!(actions(&caps(&["body", "body-markup"])).is_empty());
        assert_eq!(
            actions(&caps(&["actions", "body"])),
            [REPLY, "Reply", MARK_READ, "Mark read"]
        );
        assert_eq!(
            actions(&caps(&["actions", "inline-reply"])),
            [INLINE_REPLY, "Reply", MARK_READ, "Mark read"]
        );
    }

    #[test]
    fn signals_become_acts() {
        let shown = 7;
        assert_eq!(
            act("ActionInvoked", Some(MARK_READ), shown),
            Some(Act::MarkRead(7))
        );
        assert_eq!(
            act("ActionInvoked", Some(REPLY), shown),
            Some(Act::OpenPopup(7))
        );
        // Inline: the server asks for the text itself, then sends it.
        assert_eq!(act("ActionInvoked", Some(INLINE_REPLY), shown), None);
        assert_eq!(
            act("NotificationReplied", Some("on my way"), shown),
            Some(Act::Reply(7, "on my way".into()))
        );
        assert_eq!(act("NotificationReplied", Some("  "), shown), None);
        assert_eq!(act("ActionInvoked", Some("default"), shown), None);
        assert_eq!(act("NotificationClosed", None, shown), Some(Act::Forget));
    }

    #[test]
    fn the_terminal_emulator_is_terminal_else_x_terminal_emulator() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::ffi::OsString::from(dir.path());
        assert_eq!(terminal_emulator(None, Some(&path)), None);
        assert_eq!(
            terminal_emulator(Some("xterm".into()), Some(&path)).as_deref(),
            Some("xterm")
        );
        std::fs::write(dir.path().join("x-terminal-emulator"), "").unwrap();
        let found = dir.path().join("x-terminal-emulator").display().to_string();
        assert_eq!(
            terminal_emulator(Some(" ".into()), Some(&path)),
            Some(found)
        );
        assert_eq!(terminal_emulator(None, None), None);
    }

    #[test]
    fn remembered_notifications_are_bounded() {
        let pending = Pending::default();
        for n in 0..(MAX_PENDING as u32 + 10) {
            remember(&pending, n, &message(i64::from(n), "A", ""));
        }
        let pending = pending.lock().unwrap();
        assert_eq!(pending.len(), MAX_PENDING);
        assert_eq!(pending.keys().next(), Some(&10));
    }
}
