//! The outgoing queue: a message that could not be delivered now waits
//! there ([`enqueue`]); its owner lists and cancels entries.

use netsend_proto::display::LogSafe;

use crate::control::{fit_page, Caller, Context, ControlError};
use crate::outbound::send::SendFailure;
use crate::store::{InboxError, QueueOp};
use netsend_control::protocol::MAX_PAGE;
use netsend_control::Response;

/// A message to queue after its first attempt failed.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The recipient alias.
    pub(crate) to: String,
    /// The sender name, as sent.
    pub(crate) from: String,
    /// The text, as sent.
    pub(crate) text: String,
    /// Minutes until it expires (already checked).
    pub(crate) minutes: u64,
}

/// Queues `entry`, whose first attempt failed with `failure` (a transient
/// one), for retries until it expires; at most `[queue] max_per_user`
/// waiting entries per owner.
pub(crate) async fn enqueue(
    ctx: &Context<'_>,
    caller: &Caller,
    entry: Entry,
    failure: SendFailure,
) -> Result<Response, ControlError> {
    let letter = crate::outbound::queue::Letter {
        to: &entry.to,
        from: &entry.from,
        text: &entry.text,
    };
    let queued = crate::outbound::queue::enqueue(
        &ctx.config.queue,
        ctx.inbox,
        &caller.login,
        letter,
        entry.minutes,
        &failure.to_string(),
    )
    .await;
    match queued {
        Ok(id) => {
            tracing::info!(event = "queue", id, to = %LogSafe(&entry.to), reason = %LogSafe(&failure), "message queued");
            Ok(Response::Queued {
                id,
                reason: failure.to_string(),
            })
        }
        Err(full @ InboxError::QueueFull(_)) => Err(ControlError::QueueFull {
            failure,
            full: Box::new(full),
        }),
        Err(e) => Err(ControlError::store(e)),
    }
}

/// A page of the caller's queue (root: everyone's), oldest first.
pub(crate) async fn list(
    ctx: &Context<'_>,
    caller: &Caller,
    after_id: Option<i64>,
    limit: usize,
) -> Result<Response, ControlError> {
    let limit = limit.clamp(1, MAX_PAGE);
    // One more than the page, to tell whether more follow.
    let mut entries = ctx
        .inbox
        .queued(caller.user.as_deref(), after_id.unwrap_or(0), limit + 1)
        .await
        .map_err(ControlError::read)?;
    let mut more = entries.len() > limit;
    entries.truncate(limit);
    more |= fit_page(&mut entries);
    Ok(Response::Queue { entries, more })
}

/// Cancels the caller's waiting entry `id` (root: anyone's).
pub(crate) async fn cancel(
    ctx: &Context<'_>,
    caller: &Caller,
    id: i64,
) -> Result<Response, ControlError> {
    let op = QueueOp::Cancel {
        id,
        owner: caller.user.clone(),
    };
    match ctx.inbox.queue(op).await.map_err(ControlError::store)? {
        1 => Ok(Response::Ok),
        _ => Err(ControlError::NoQueued(id)),
    }
}
