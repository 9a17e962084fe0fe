//! Directed sends: `Send`, `SendQueued` (queued when the recipient cannot be
//! reached now) and `SentStatus` (the receipts of a sent message).

use netsend_proto::display::LogSafe;

use crate::control::queue::{self, Entry};
use crate::control::{Caller, Context, ControlError};
use crate::outbound::send::SendFailure;
use crate::store::{NewSent, SentOp};
use netsend_control::types::{SendReport, SentKind};
use netsend_control::Response;

/// A directed message as the caller asked for it.
#[derive(Debug, Clone)]
pub(crate) struct Letter {
    /// The recipient alias.
    pub(crate) to: String,
    /// The sender name claimed, if any.
    pub(crate) from: Option<String>,
    /// The text.
    pub(crate) text: String,
}

/// `letter` as sent for its caller: the sender name and text they may
/// use.
struct Attempt {
    to: String,
    from: String,
    text: String,
}

/// What became of sending an [`Attempt`] now.
type Outcome = Result<SendReport, SendFailure>;

impl Attempt {
    /// Sends `letter` now, as `caller`.
    async fn make(ctx: &Context<'_>, caller: &Caller, letter: Letter) -> (Self, Outcome) {
        let (from, text) = caller.sender_identity(letter.from, letter.text);
        let to = letter.to;
        let outcome = ctx
            .network
            .send(Some(caller.uid), to.clone(), from.clone(), text.clone())
            .await;
        (Self { to, from, text }, outcome)
    }
}

/// The answer to a delivered message, recorded in the sent archive (and
/// for `netsend status`).
async fn delivered(
    ctx: &Context<'_>,
    caller: &Caller,
    mut report: SendReport,
    from: &str,
    text: &str,
) -> Response {
    let archived = Archived {
        kind: SentKind::Directed,
        to: report.to.clone(),
        from: from.to_owned(),
        address: host_of(&report.address),
        text: text.to_owned(),
        outcome: "delivered".to_owned(),
        queue_id: None,
    };
    report.receipt_id = archive(ctx, caller, archived).await;
    Response::Sent(report)
}

/// The IP address of `address` (`IP:port`), or `address` itself.
pub(crate) fn host_of(address: &str) -> String {
    address
        .parse::<std::net::SocketAddr>()
        .map_or_else(|_| address.to_owned(), |a| a.ip().to_string())
}

/// The outcome of a failed send, for the sent archive.
pub(crate) fn failed(e: &SendFailure) -> String {
    format!("failed ({}): {e}", e.status().0)
}

/// A send to record in the caller's sent archive.
#[derive(Debug, Clone)]
pub(crate) struct Archived {
    /// What kind of send.
    pub(crate) kind: SentKind,
    /// The recipient (a domain, `/USERS`).
    pub(crate) to: String,
    /// The sender name as sent.
    pub(crate) from: String,
    /// The recipient host's address, if one was reached.
    pub(crate) address: String,
    /// The text as sent.
    pub(crate) text: String,
    /// What became of it.
    pub(crate) outcome: String,
    /// Its queue entry, if it was queued.
    pub(crate) queue_id: Option<i64>,
}

/// Records a send in the caller's sent archive (kept `[sent]
/// max_per_user` per sender); returns its id (failures to record are
/// logged: the send itself happened).
pub(crate) async fn archive(ctx: &Context<'_>, caller: &Caller, a: Archived) -> Option<i64> {
    let op = SentOp::Record(NewSent {
        owner: caller.login.clone(),
        to: a.to,
        from: a.from,
        address: a.address,
        text: a.text,
        kind: a.kind,
        outcome: a.outcome,
        queue_id: a.queue_id,
        keep: ctx.config.sent.max_per_user,
    });
    match ctx.inbox.sent_change(op).await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(event = "send", reason = %LogSafe(&e), "send not recorded in the sent archive");
            None
        }
    }
}

/// Records a failed directed send in the sent archive.
async fn archive_failure(ctx: &Context<'_>, caller: &Caller, attempt: Attempt, e: &SendFailure) {
    let archived = Archived {
        kind: SentKind::Directed,
        to: attempt.to,
        from: attempt.from,
        address: String::new(),
        text: attempt.text,
        outcome: failed(e),
        queue_id: None,
    };
    archive(ctx, caller, archived).await;
}

/// Sends `letter` now.
pub(crate) async fn send(
    ctx: &Context<'_>,
    caller: &Caller,
    letter: Letter,
) -> Result<Response, ControlError> {
    let (attempt, outcome) = Attempt::make(ctx, caller, letter).await;
    match outcome {
        Ok(report) => {
            tracing::info!(event = "send", from = %LogSafe(&attempt.from), to = %LogSafe(&report.to), peer = %report.address, transport = "session", "message sent");
            Ok(delivered(ctx, caller, report, &attempt.from, &attempt.text).await)
        }
        Err(e) => {
            tracing::info!(event = "send", from = %LogSafe(&attempt.from), to = %LogSafe(&attempt.to), reason = %LogSafe(&e), transport = "session", "message not sent");
            archive_failure(ctx, caller, attempt, &e).await;
            Err(e.into())
        }
    }
}

/// Sends `letter` now, or when its recipient cannot be reached now (a
/// transient failure) queues it for `expire_minutes` (default: `[queue]
/// expire_minutes`).
pub(crate) async fn send_queued(
    ctx: &Context<'_>,
    caller: &Caller,
    letter: Letter,
    expire_minutes: Option<u64>,
) -> Result<Response, ControlError> {
    let q = &ctx.config.queue;
    let minutes = netsend_proto::queue::expiry_minutes(
        expire_minutes,
        q.expire_minutes,
        q.max_expire_minutes,
    )?;
    let (attempt, outcome) = Attempt::make(ctx, caller, letter).await;
    match outcome {
        Ok(report) => Ok(delivered(ctx, caller, report, &attempt.from, &attempt.text).await),
        Err(e) if netsend_proto::queue::is_transient(e.status().0) => {
            let entry = Entry {
                to: attempt.to.clone(),
                from: attempt.from.clone(),
                text: attempt.text.clone(),
                minutes,
            };
            let queued = queue::enqueue(ctx, caller, entry, e).await?;
            if let Response::Queued { id, .. } = &queued {
                let archived = Archived {
                    kind: SentKind::Queued,
                    to: attempt.to,
                    from: attempt.from,
                    address: String::new(),
                    text: attempt.text,
                    outcome: "queued".to_owned(),
                    queue_id: Some(*id),
                };
                archive(ctx, caller, archived).await;
            }
            Ok(queued)
        }
        Err(e) => {
            archive_failure(ctx, caller, attempt, &e).await;
            Err(e.into())
        }
    }
}

/// The caller's sent message `id` (root: anyone's) with its receipts.
pub(crate) async fn sent_status(
    ctx: &Context<'_>,
    caller: &Caller,
    id: i64,
) -> Result<Response, ControlError> {
    ctx.inbox
        .sent(id, caller.sent_owner())
        .await
        .map_err(ControlError::store)?
        .map(Response::SentStatus)
        .ok_or(ControlError::NoSent(id))
}
