//! `Broadcast`: a message to every messenger of a domain or workgroup (`*`,
//! `/DOMAIN[:NAME]`).

use crate::control::send::{archive, failed, Archived};
use crate::control::{Caller, Context, ControlError};
use netsend_control::types::SentKind;
use netsend_control::Response;

/// A broadcast as the caller asked for it.
#[derive(Debug, Clone)]
pub(crate) struct Broadcast {
    /// The domain; `None`: our own workgroup.
    pub(crate) domain: Option<String>,
    /// The sender name claimed, if any.
    pub(crate) from: Option<String>,
    /// The text.
    pub(crate) text: String,
    /// Send a text too long for one datagram as several.
    pub(crate) split: bool,
}

/// Broadcasts, when the caller may (root and the broadcast group).
pub(crate) async fn broadcast(
    ctx: &Context<'_>,
    caller: &Caller,
    request: Broadcast,
) -> Result<Response, ControlError> {
    caller.may_send_to_many(&ctx.config.broadcast_group, "broadcast")?;
    let (from, text) = caller.sender_identity(request.from, request.text);
    let domain = request
        .domain
        .unwrap_or_else(|| ctx.config.workgroup.clone());
    let sent = ctx
        .network
        .broadcast(domain.clone(), from.clone(), text.clone(), request.split)
        .await;
    let archived = Archived {
        kind: SentKind::Broadcast,
        to: domain.to_uppercase(),
        from,
        address: domain.to_uppercase(),
        text,
        outcome: match &sent {
            Ok(n) => format!("{n} datagram(s)"),
            Err(e) => failed(e),
        },
        queue_id: None,
    };
    archive(ctx, caller, archived).await;
    let datagrams = sent?;
    Ok(Response::Broadcast {
        domain: domain.to_uppercase(),
        datagrams,
    })
}
