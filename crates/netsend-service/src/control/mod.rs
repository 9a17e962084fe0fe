//! The handlers of the control socket's requests (`netsend_control::protocol`,
//! from local clients and remote callers).
//!
//! `dispatch` takes a typed `Request` from a `Caller` to the handler
//! of its family, each in its own file and each returning
//! `Result<Response, ControlError>`:
//!
//! - `send`: `Send`, `SendQueued`, `SentStatus`.
//! - `queue`: the outgoing queue (`Queue`, `QueueCancel`, and queueing a
//!   message that could not be sent now).
//! - `broadcast`: `Broadcast` (`*`, `/DOMAIN`).
//! - `users`: `SendUsers` (`/USERS`).
//! - `names`: `Names`, `NameAdd`, `NameDel`, `NameForward`.
//! - `inbox`: `InboxList` (search, waiting), `InboxRead`, `InboxShown`,
//!   `InboxDelete`.
//! - `status`: `Status`, `Stop`.
//! - `gateway`: `GatewayStatus` (the site gateway).
//! - `alert`: `Alert` (the Alerter).
//! - `conversations`: `SentList` (the sent archive), `Thread` (the
//!   exchange with one correspondent), `Reply`, `Away` and `AwaySet`.
//! - `view`: `View`, `ViewDomains`, `ViewHost` (the browse list).
//!
//! Who may do what is decided in `caller`; the status each failure answers
//! with in `error`; what the handlers work with is a `Context` (`context`),
//! built from the running service in one function. The socket itself
//! (accept, credentials, caps, framing) is `transport::control_socket`.

mod alert;
mod broadcast;
mod caller;
mod context;
mod conversations;
mod error;
mod gateway;
mod inbox;
mod names;
mod queue;
mod send;
mod status;
#[cfg(test)]
pub(crate) mod tests;
mod users;
mod view;

pub(crate) use caller::Caller;
pub(crate) use context::Context;
pub(crate) use error::ControlError;

use netsend_control::protocol::{MAX_PAGE, MAX_PAGE_BYTES};
use netsend_control::{Request, Response};

/// Answers `request` from `caller`.
pub(crate) async fn dispatch(ctx: &Context<'_>, caller: &Caller, request: Request) -> Response {
    handle(ctx, caller, request)
        .await
        .unwrap_or_else(Response::from)
}

/// Answers a request that arrived over the remote-call channel from
/// `principal`, a member of this host's administrators or server_operators,
/// who may do what root may do here. Only the calls netapi32 offers remotely
/// are served; anything else is ERROR_NOT_SUPPORTED.
pub(crate) async fn dispatch_remote(
    ctx: &Context<'_>,
    principal: &str,
    request: Request,
) -> Response {
    match request {
        Request::Send { .. }
        | Request::Names
        | Request::NameAdd { .. }
        | Request::NameDel { .. }
        | Request::Status => dispatch(ctx, &Caller::remote(principal), request).await,
        _ => ControlError::NotRemote.into(),
    }
}

/// Takes `request` to the handler of its family.
async fn handle(
    ctx: &Context<'_>,
    caller: &Caller,
    request: Request,
) -> Result<Response, ControlError> {
    match request {
        Request::Status => status::status(ctx, caller).await,
        Request::Stop => status::stop(ctx, caller),
        Request::Send { to, from, text } => {
            send::send(ctx, caller, send::Letter { to, from, text }).await
        }
        Request::SendQueued {
            to,
            from,
            text,
            expire_minutes,
        } => send::send_queued(ctx, caller, send::Letter { to, from, text }, expire_minutes).await,
        Request::SentStatus { id } => send::sent_status(ctx, caller, id).await,
        Request::Queue { after_id, limit } => queue::list(ctx, caller, after_id, limit).await,
        Request::QueueCancel { id } => queue::cancel(ctx, caller, id).await,
        Request::Broadcast {
            domain,
            from,
            text,
            split,
        } => {
            let request = broadcast::Broadcast {
                domain,
                from,
                text,
                split,
            };
            broadcast::broadcast(ctx, caller, request).await
        }
        Request::SendUsers { from, text } => users::send_users(ctx, caller, from, text).await,
        Request::Names => names::list(ctx, caller),
        Request::NameAdd { name } => names::add(ctx, caller, name).await,
        Request::NameDel { name } => names::delete(ctx, caller, name),
        Request::NameForward { name, host } => names::forward(ctx, caller, name, host),
        Request::InboxList {
            unread_only,
            after_id,
            limit,
            search,
            wait_ms,
            select,
        } => {
            let request = inbox::ListRequest {
                unread_only,
                after_id,
                limit,
                search,
                wait_ms,
                select,
            };
            inbox::list(ctx, caller, request).await
        }
        Request::SentList {
            after_id,
            before_id,
            limit,
            newest,
            search,
            to,
            since_ms,
            count,
        } => {
            let filter = crate::store::SentFilter {
                owner: caller.sent_owner().map(String::from),
                after_id,
                before_id,
                limit: limit.clamp(1, MAX_PAGE),
                newest,
                search,
                to,
                since_ms,
            };
            conversations::sent_list(ctx, filter, count).await
        }
        Request::Thread {
            with,
            limit,
            received_before,
            sent_before,
        } => {
            let page = conversations::ThreadPage {
                with,
                limit: limit.clamp(1, MAX_PAGE),
                received_before,
                sent_before,
            };
            conversations::thread(ctx, caller, page).await
        }
        Request::Reply { id, text } => conversations::reply(ctx, caller, id, text).await,
        Request::Away => conversations::away(ctx, caller).await,
        Request::AwaySet { text } => conversations::set_away(ctx, caller, text).await,
        Request::InboxRead { id } => inbox::read(ctx, caller, id).await,
        Request::Deliver { .. } => Err(ControlError::OnlyFromHosts),
        Request::InboxShown { id } => inbox::shown(ctx, caller, id).await,
        Request::InboxDelete { ids, read } => inbox::delete(ctx, caller, ids, read).await,
        Request::Alert(alert) => alert::raise(ctx, caller, alert).await,
        Request::View { domain } => view::hosts(ctx, caller, domain).await,
        Request::ViewDomains => view::domains(ctx, caller),
        Request::GatewayStatus => gateway::status(ctx).await,
        Request::ViewHost { host } => view::host(ctx, caller, host).await,
    }
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
