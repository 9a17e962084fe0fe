//! `Status` (service facts, away messages among them) and `Stop`.

use crate::control::{Caller, Context, ControlError};
use netsend_control::types::{NameStatus, StatusInfo};
use netsend_control::Response;

/// The service's names, addresses, key and counts.
pub(crate) async fn status(ctx: &Context<'_>, caller: &Caller) -> Result<Response, ControlError> {
    let texts = |addresses: &[std::net::SocketAddr]| {
        addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let host = ctx.host;
    let drops = ctx.admission.drop_counts();
    Ok(Response::Status(StatusInfo {
        computer_name: ctx.config.computer_name.clone(),
        workgroup: ctx.config.workgroup.clone(),
        pid: std::process::id(),
        session_addresses: texts(&host.session_addresses),
        name_addresses: texts(&host.name_addresses),
        messages: ctx.inbox.count().await.unwrap_or(0),
        remote_addresses: texts(&host.remote_addresses),
        remote_key: host.remote_key.clone(),
        alerts: ctx.alerter.map(crate::alerter::Alerter::counts),
        wins_server: ctx.wins.map(|w| Box::new(w.status())),
        dropped: drops.values().sum(),
        drops,
        names: crate::control::names::states(ctx)
            .into_iter()
            .map(|(alias, state, detail)| NameStatus {
                name: alias.name,
                state: state.to_owned(),
                detail,
            })
            .collect(),
        queued: ctx.inbox.queue_depth().await.unwrap_or(0),
        reload: ctx.reloads.status(),
        // The caller's own away message; root sees everyone's.
        away: if caller.is_root() {
            ctx.away.all()
        } else {
            ctx.away.get(&caller.login).into_iter().collect()
        },
    }))
}

/// Stops the service, when the caller may.
pub(crate) fn stop(ctx: &Context<'_>, caller: &Caller) -> Result<Response, ControlError> {
    caller.may_stop()?;
    ctx.shutdown.request();
    Ok(Response::Ok)
}
