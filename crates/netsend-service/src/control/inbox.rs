//! The caller's inbox: list (with search and waiting for new messages),
//! read, shown, delete.

use std::time::Duration;

use netsend_proto::receipt::ReceiptState;

use crate::control::{fit_page, Caller, Context, ControlError};
use crate::store::{Deletion, InboxError, ListFilter, StoredMessage};
use netsend_control::protocol::{MAX_PAGE, MAX_WAIT_MS};
use netsend_control::types::InboxSelection;
use netsend_control::Response;

/// What `InboxList` asks for.
#[derive(Debug, Clone)]
pub(crate) struct ListRequest {
    /// Only messages not yet read.
    pub(crate) unread_only: bool,
    /// Only messages with a larger id.
    pub(crate) after_id: Option<i64>,
    /// At most this many (capped at [`MAX_PAGE`]).
    pub(crate) limit: usize,
    /// Only messages whose sender, alias or text contains this.
    pub(crate) search: Option<String>,
    /// When nothing matches, wait up to this many ms (capped at
    /// [`MAX_WAIT_MS`]) for a new message that does.
    pub(crate) wait_ms: u64,
    /// The newest, a sender, a time, and whether to count.
    pub(crate) select: InboxSelection,
}

/// A page of the messages the caller may see.
pub(crate) async fn list(
    ctx: &Context<'_>,
    caller: &Caller,
    request: ListRequest,
) -> Result<Response, ControlError> {
    let filter = ListFilter {
        user: caller.user.clone(),
        unread_only: request.unread_only,
        after_id: request.after_id,
        limit: request.limit.min(MAX_PAGE),
        search: request.search,
        before_id: request.select.before_id,
        since_ms: request.select.since_ms,
        from: request.select.from,
        newest: request.select.newest,
    };
    let wait = Duration::from_millis(request.wait_ms.min(MAX_WAIT_MS));
    let (mut messages, total) = list_or_wait(ctx, &filter, request.select.count, wait)
        .await
        .map_err(ControlError::read)?;
    // A page of the newest that is too large keeps its newest end, so the
    // next page (before its first id) follows on without a gap.
    let more = if filter.newest {
        messages.reverse();
        let cut = fit_page(&mut messages);
        messages.reverse();
        cut
    } else {
        fit_page(&mut messages)
    };
    Ok(Response::Messages {
        messages,
        more,
        total,
    })
}

/// The messages `filter` selects; when there are none, waits up to `wait`
/// for a newly stored one that it selects (or for the service to stop).
async fn list_or_wait(
    ctx: &Context<'_>,
    filter: &ListFilter,
    count: bool,
    wait: Duration,
) -> Result<(Vec<StoredMessage>, Option<u64>), InboxError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut stored = ctx.inbox.watch_stored();
    loop {
        // Seen before listing, so a message stored meanwhile wakes us.
        stored.borrow_and_update();
        let messages = ctx.inbox.list_counted(filter, count).await?;
        if !messages.0.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(messages);
        }
        tokio::select! {
            changed = stored.changed() => if changed.is_err() { return Ok(messages) },
            () = tokio::time::sleep_until(deadline) => return Ok(messages),
            () = ctx.shutdown.cancelled() => return Ok(messages),
        }
    }
}

/// Whether message `id` has no such receipt yet from anyone (`receipt` picks
/// its time out of the message's own columns, the first reader's).
async fn first_receipt(
    ctx: &Context<'_>,
    id: i64,
    receipt: impl Fn(&StoredMessage) -> Option<i64>,
) -> bool {
    matches!(ctx.inbox.get(id, None).await, Ok(Some(m)) if receipt(&m).is_none())
}

/// Shows message `id` and marks it read; the sender hears of the first
/// reader only.
pub(crate) async fn read(
    ctx: &Context<'_>,
    caller: &Caller,
    id: i64,
) -> Result<Response, ControlError> {
    let user = caller.user.as_deref();
    let message = ctx
        .inbox
        .get(id, user)
        .await
        .map_err(ControlError::read)?
        .ok_or(ControlError::NoMessage(id))?;
    let first = first_receipt(ctx, id, |m| m.read_at).await;
    let _ = ctx.inbox.mark_read(id, user).await;
    if first {
        ctx.network.send_receipt(&message, ReceiptState::Read);
    }
    // Answer with the receipt times just recorded.
    let marked = ctx.inbox.get(id, user).await;
    Ok(Response::Message(marked.ok().flatten().unwrap_or(message)))
}

/// Records that message `id` was shown to the caller (a display agent);
/// the sender hears of the first showing only.
pub(crate) async fn shown(
    ctx: &Context<'_>,
    caller: &Caller,
    id: i64,
) -> Result<Response, ControlError> {
    let first = first_receipt(ctx, id, |m| m.shown_at).await;
    let marked = ctx
        .inbox
        .mark_shown(id, caller.user.as_deref())
        .await
        .map_err(ControlError::store)?;
    if !marked {
        return Err(ControlError::NoMessage(id));
    }
    let message = ctx.inbox.get(id, None).await.ok().flatten();
    if let Some(m) = message.filter(|_| first) {
        ctx.network.send_receipt(&m, ReceiptState::Shown);
    }
    Ok(Response::Ok)
}

/// Deletes the caller's messages `ids` (and with `read` every read one);
/// shared ones are hidden from the caller, root deletes any.
pub(crate) async fn delete(
    ctx: &Context<'_>,
    caller: &Caller,
    ids: Vec<i64>,
    read: bool,
) -> Result<Response, ControlError> {
    let deletion = Deletion {
        ids,
        read,
        user: caller.user.clone(),
    };
    let count = ctx
        .inbox
        .delete(deletion)
        .await
        .map_err(ControlError::store)?;
    Ok(Response::Deleted { count })
}
