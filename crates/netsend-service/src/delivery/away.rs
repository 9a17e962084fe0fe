//! Away messages (`netsend away TEXT`): while a user is away, a message
//! stored for them gets one automatic answer per sender and hour, marked
//! as automatic ([`netsend_proto::away`] decides who gets one). The answer
//! goes where `netsend reply` would send it ([`super::reply`]) and is
//! recorded in the user's sent archive. The message itself is stored and
//! shown as always; the answer never holds up its acknowledgement.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use netsend_control::types::SentKind;
use netsend_proto::away::{automatic_text, AwayRule, Incoming};
use netsend_proto::display::LogSafe;
use netsend_proto::reply::source_ip;
use netsend_wire::CodePage;

use super::forward::SendPath;
use super::DeliveryChannel;
use crate::admission::slots::TaskSlots;
use crate::config::Config;
use crate::outbound::send::Deadline;
use crate::shutdown::Shutdown;
use crate::store::{AwayState, InboxHandle, NewSent, SentOp, StoredMessage};
use crate::system::net::Interface;

/// Automatic answers being sent at once.
const MAX_RUNNING: usize = 8;
/// Answers waiting for a slot; beyond this one is skipped (logged).
const MAX_WAITING: usize = 64;

/// Who is away (their texts, as stored) and whom they answered lately.
#[derive(Debug, Default)]
pub(crate) struct AwayBook {
    inner: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    away: BTreeMap<String, AwayState>,
    rule: AwayRule,
}

impl AwayBook {
    /// Takes in the away messages stored before a restart.
    pub(crate) fn load(&self, states: Vec<AwayState>) {
        let mut book = self.inner.lock().expect("away lock");
        book.away = states.into_iter().map(|s| (s.user.clone(), s)).collect();
    }

    /// Records `user`'s new away state (`None`: back); a new absence
    /// answers everyone again.
    pub(crate) fn set(&self, user: &str, state: Option<AwayState>) {
        let mut book = self.inner.lock().expect("away lock");
        book.rule.forget_user(user);
        match state {
            Some(state) => book.away.insert(user.to_owned(), state),
            None => book.away.remove(user),
        };
    }

    /// `user`'s away state, if they are away.
    pub(crate) fn get(&self, user: &str) -> Option<AwayState> {
        self.inner
            .lock()
            .expect("away lock")
            .away
            .get(user)
            .cloned()
    }

    /// Whether `user` is away (no copy made: asked for every message).
    fn is_away(&self, user: &str) -> bool {
        self.inner
            .lock()
            .expect("away lock")
            .away
            .contains_key(user)
    }

    /// Everyone's away state.
    pub(crate) fn all(&self) -> Vec<AwayState> {
        self.inner
            .lock()
            .expect("away lock")
            .away
            .values()
            .cloned()
            .collect()
    }

    /// The away text to answer `message` with, if it gets an answer now
    /// (recorded as given); `from_this_host` says whether it came from
    /// one of our addresses.
    fn answer(&self, message: &StoredMessage, from_this_host: bool, now_ms: i64) -> Option<String> {
        let user = message.recipient_user.as_deref()?;
        let mut book = self.inner.lock().expect("away lock");
        let text = book.away.get(user)?.text.clone();
        let incoming = Incoming {
            user,
            from: &message.from,
            source: source_ip(&message.source),
            broadcast: message.broadcast,
            text: &message.text,
            from_this_host,
        };
        match book.rule.decide(now_ms, &incoming) {
            Ok(()) => Some(text),
            Err(skip) => {
                tracing::info!(event = "away", id = message.id, from = %LogSafe(&message.from), user = %LogSafe(user), reason = skip.as_str(), "no automatic answer");
                None
            }
        }
    }
}

/// The away channel: answers messages for users who are away.
pub(crate) struct Away {
    book: Arc<AwayBook>,
    path: Arc<dyn SendPath>,
    inbox: InboxHandle,
    code_page: CodePage,
    session_port: u16,
    send_timeout_secs: u64,
    keep_sent: u64,
    own_addresses: Vec<Ipv4Addr>,
    slots: TaskSlots,
}

impl Away {
    /// The channel answering for the users `book` lists, on `path`;
    /// `interfaces` and `session_addresses` say what is this host.
    pub(crate) fn new(
        config: &Config,
        interfaces: &[Interface],
        session_addresses: &[SocketAddr],
        book: Arc<AwayBook>,
        path: Arc<dyn SendPath>,
        inbox: InboxHandle,
        shutdown: Shutdown,
    ) -> Self {
        let own_addresses = super::forward::own_addresses(interfaces, session_addresses);
        Self {
            book,
            path,
            inbox,
            code_page: config.code_page,
            session_port: config.network.session_port,
            send_timeout_secs: config.limits.send_timeout_secs,
            keep_sent: config.sent.max_per_user,
            own_addresses,
            slots: TaskSlots::new(MAX_RUNNING, MAX_WAITING, shutdown),
        }
    }

    /// Whether `message` came from this host.
    fn is_local(&self, message: &StoredMessage) -> bool {
        match source_ip(&message.source) {
            Some(IpAddr::V4(ip)) => {
                ip.is_loopback() || ip.is_unspecified() || self.own_addresses.contains(&ip)
            }
            Some(IpAddr::V6(ip)) => ip.is_loopback(),
            None => false,
        }
    }

    /// Sends the automatic answer `away_text` to `message`'s sender from
    /// its recipient, and records it in their sent archive.
    async fn answer(&self, message: &StoredMessage, away_text: String) {
        let user = message.recipient_user.clone().unwrap_or_default();
        let deadline = Deadline::within(self.send_timeout_secs);
        let text = automatic_text(&away_text);
        let sent = match super::reply::route(
            self.path.as_ref(),
            message,
            self.code_page,
            self.session_port,
            deadline,
        )
        .await
        {
            Ok(route) => super::reply::send(self.path.as_ref(), &route, &user, &text, deadline)
                .await
                .map(|()| route),
            Err(e) => Err(e),
        };
        let (address, outcome) = match &sent {
            Ok(route) => {
                tracing::info!(event = "away", id = message.id, from = %LogSafe(&user), to = %LogSafe(&route.name), peer = %route.address, transport = "session", "automatic answer sent");
                (route.address.ip().to_string(), "delivered".to_owned())
            }
            Err(e) => {
                tracing::warn!(event = "away", id = message.id, from = %LogSafe(&user), to = %LogSafe(&message.from), reason = %LogSafe(e), "automatic answer not sent");
                (String::new(), format!("failed: {e} ({})", e.status()))
            }
        };
        let record = NewSent {
            owner: user.clone(),
            to: sent.map_or_else(|_| message.from.clone(), |r| r.name),
            from: user,
            address,
            text,
            kind: SentKind::Automatic,
            outcome,
            queue_id: None,
            keep: self.keep_sent,
        };
        if let Err(e) = self.inbox.sent_change(SentOp::Record(record)).await {
            tracing::warn!(event = "away", id = message.id, reason = %LogSafe(&e), "automatic answer not archived");
        }
    }
}

impl DeliveryChannel for Away {
    fn name(&self) -> &'static str {
        "away"
    }

    fn wants(&self, message: &StoredMessage) -> bool {
        message
            .recipient_user
            .as_deref()
            .is_some_and(|user| self.book.is_away(user))
    }

    /// Decides at once (so two messages in a row get one answer), then
    /// sends in one of the channel's slots.
    fn deliver(self: Arc<Self>, message: Arc<StoredMessage>) {
        let from_here = self.is_local(&message);
        let Some(text) = self
            .book
            .answer(&message, from_here, crate::store::now_ms())
        else {
            return;
        };
        let id = message.id;
        let away = self.clone();
        if !self
            .slots
            .spawn(async move { away.answer(&message, text).await })
        {
            tracing::warn!(
                event = "away",
                id,
                reason = "too many automatic answers waiting",
                "automatic answer not sent"
            );
        }
    }
}
