//! `GatewayStatus`: the site gateway's state. Anyone may read it, as
//! `Status`: it names servers and counts, no message or sender.

use crate::control::{Context, ControlError};
use netsend_control::types::GatewayState;
use netsend_control::Response;

/// The gateway's state, or `GatewayOff` without `[gateway]`.
pub(crate) async fn status(ctx: &Context<'_>) -> Result<Response, ControlError> {
    state(ctx)
        .await
        .map(Response::Gateway)
        .ok_or(ControlError::GatewayOff)
}

/// The gateway's state, when there is a gateway (`messenger status` too).
pub(crate) async fn state(ctx: &Context<'_>) -> Option<GatewayState> {
    let (gateway, config) = (ctx.gateway?, ctx.config.gateway.as_ref()?);
    Some(crate::gateway::status::state(gateway, config).await)
}
