//! Directed sends: `Send`, `SendQueued` (queued when the recipient cannot be
//! reached now) and `SentStatus` (the receipts of a sent message).

use netsend_proto::display::LogSafe;

use crate::control::queue::{self, Entry};
use crate::control::{Caller, Context, ControlError};
use crate::outbound::send::SendFailure;
use crate::store::SentOp;
use netsend_control::types::SendReport;
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

/// `letter` as sent for its caller (the sender name and text they may
/// use) and what became of sending it now.
struct Attempt {
    to: String,
    from: String,
    text: String,
    outcome: Result<SendReport, SendFailure>,
}

impl Attempt {
    /// Sends `letter` now, as `caller`.
    async fn make(ctx: &Context<'_>, caller: &Caller, letter: Letter) -> Self {
        let (from, text) = caller.sender_identity(letter.from, letter.text);
        let to = letter.to;
        let outcome = ctx
            .network
            .send(Some(caller.uid), to.clone(), from.clone(), text.clone())
            .await;
        Self {
            to,
            from,
            text,
            outcome,
        }
    }
}

/// The answer to a delivered message, recorded for `netsend status`.
async fn delivered(
    ctx: &Context<'_>,
    caller: &Caller,
    mut report: SendReport,
    from: &str,
    text: &str,
) -> Response {
    report.receipt_id = record_sent(ctx, caller, &report, from, text).await;
    Response::Sent(report)
}

/// Sends `letter` now.
pub(crate) async fn send(
    ctx: &Context<'_>,
    caller: &Caller,
    letter: Letter,
) -> Result<Response, ControlError> {
    let attempt = Attempt::make(ctx, caller, letter).await;
    match attempt.outcome {
        Ok(report) => {
            tracing::info!(event = "send", from = %LogSafe(&attempt.from), to = %LogSafe(&report.to), peer = %report.address, transport = "session", "message sent");
            Ok(delivered(ctx, caller, report, &attempt.from, &attempt.text).await)
        }
        Err(e) => {
            tracing::info!(event = "send", from = %LogSafe(&attempt.from), to = %LogSafe(&attempt.to), reason = %LogSafe(&e), transport = "session", "message not sent");
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
    let attempt = Attempt::make(ctx, caller, letter).await;
    match attempt.outcome {
        Ok(report) => Ok(delivered(ctx, caller, report, &attempt.from, &attempt.text).await),
        Err(e) if netsend_proto::queue::is_transient(e.status().0) => {
            let entry = Entry {
                to: attempt.to,
                from: attempt.from,
                text: attempt.text,
                minutes,
            };
            queue::enqueue(ctx, caller, entry, e).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Records a delivered message for `netsend status`; returns its id.
async fn record_sent(
    ctx: &Context<'_>,
    caller: &Caller,
    report: &SendReport,
    from: &str,
    text: &str,
) -> Option<i64> {
    let address = report
        .address
        .parse::<std::net::SocketAddr>()
        .map_or_else(|_| report.address.clone(), |a| a.ip().to_string());
    let op = SentOp::Record {
        owner: caller.login.clone(),
        to: report.to.clone(),
        from: from.to_owned(),
        address,
        digest: netsend_proto::receipt::digest(text),
        keep: ctx.config.sent.max_per_user,
    };
    ctx.inbox.sent_change(op).await.ok()
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
