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

use std::collections::HashMap;
use std::time::{Duration, Instant};

use netsend_control::config::ClientConfig;
use netsend_control::protocol::MAX_PAGE;
use netsend_control::types::StoredMessage;
use netsend_control::{client, Request, Response};
use netsend_proto::display::{reply_hint, sanitize_name, Shown};
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

/// Runs the agent until the session bus goes away.
pub(crate) async fn run(config: &ClientConfig) -> Result<(), Failure> {
    let bus = zbus::Connection::session().await.map_err(|e| {
        Failure::new(
            NetApiStatus::ERROR_NOT_SUPPORTED,
            format!("cannot reach the session bus: {e}"),
        )
        .with_hint("run `netsend agent` inside your graphical session (DBUS_SESSION_BUS_ADDRESS)")
    })?;
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
                        Ok(()) => mark_shown(config, m.id).await,
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
/// urgency and the server's own timeout otherwise. The body is escaped when
/// the server reads markup, and ends with how to reply.
async fn notify(bus: &zbus::Connection, message: &Shown<'_>, id: i64) -> zbus::Result<()> {
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
    bus.call_method(
        Some(NOTIFICATIONS),
        NOTIFICATIONS_PATH,
        Some(NOTIFICATIONS),
        "Notify",
        &(
            "netsend",
            0u32,
            "",
            summary.as_str(),
            body.as_str(),
            Vec::<&str>::new(),
            hints,
            expire_timeout,
        ),
    )
    .await
    .map(drop)
}
