//! `Broadcast`: a message to every messenger of a domain or workgroup (`*`,
//! `/DOMAIN[:NAME]`).

use crate::control::{Caller, Context, ControlError};
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
    let datagrams = ctx
        .network
        .broadcast(domain.clone(), from, text, request.split)
        .await?;
    Ok(Response::Broadcast {
        domain: domain.to_uppercase(),
        datagrams,
    })
}
