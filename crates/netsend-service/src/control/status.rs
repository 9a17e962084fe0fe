//! `Status` (service facts) and `Stop`.

use crate::control::{Caller, Context, ControlError, Response, StatusInfo};

/// The service's names, addresses, key and counts.
pub(crate) async fn status(ctx: &Context<'_>) -> Result<Response, ControlError> {
    let texts = |addresses: &[std::net::SocketAddr]| {
        addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let drops = ctx.daemon.drop_counts();
    Ok(Response::Status(StatusInfo {
        computer_name: ctx.config.computer_name.clone(),
        workgroup: ctx.config.workgroup.clone(),
        pid: std::process::id(),
        session_addresses: texts(ctx.session_addresses),
        name_addresses: texts(ctx.name_addresses),
        messages: ctx.inbox.count().await.unwrap_or(0),
        remote_addresses: texts(ctx.remote_addresses),
        remote_key: ctx.remote_key.map(str::to_owned),
        dropped: drops.values().sum(),
        drops,
    }))
}

/// Stops the service, when the caller may.
pub(crate) fn stop(ctx: &Context<'_>, caller: &Caller) -> Result<Response, ControlError> {
    caller.may_stop()?;
    ctx.daemon.request_stop();
    Ok(Response::Ok)
}
