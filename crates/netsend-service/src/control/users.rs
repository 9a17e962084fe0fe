//! `SendUsers` (`/USERS`): a message to every user with a session on this
//! host, at the machine each one sits at.

use std::sync::Arc;

use crate::control::{Caller, Context, ControlError};
use netsend_control::types::{UserDelivery, UserFailure};
use netsend_control::Response;

/// How many `/USERS` copies are in flight at once.
const USERS_FAN_OUT: usize = 32;

/// Sends to every logged-in user, when the caller may (root and the
/// broadcast group); a few unreachable machines do not hold up the rest.
pub(crate) async fn send_users(
    ctx: &Context<'_>,
    caller: &Caller,
    from: Option<String>,
    text: String,
) -> Result<Response, ControlError> {
    caller.may_send_to_many(&ctx.config.broadcast_group, "send to /USERS")?;
    let (from, text) = caller.sender_identity(from, text);
    let samba = ctx.config.samba_config.clone();
    let logins = crate::system::users::logins(&ctx.config).await;
    let people = tokio::task::spawn_blocking(move || {
        crate::system::users::recipients(logins, samba.as_deref())
    })
    .await
    .unwrap_or_default();
    let slots = Arc::new(tokio::sync::Semaphore::new(USERS_FAN_OUT));
    let mut sends = tokio::task::JoinSet::new();
    for (i, person) in people.into_iter().enumerate() {
        let sent = ctx.network.send_to_session(
            Some(caller.uid),
            person.user.clone(),
            person.client,
            from.clone(),
            text.clone(),
        );
        let slots = slots.clone();
        sends.spawn(async move {
            let _slot = slots.acquire_owned().await;
            (i, person.user, sent.await)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = sends.join_next().await {
        if let Ok(outcome) = joined {
            outcomes.push(outcome);
        }
    }
    outcomes.sort_by_key(|(i, _, _)| *i);
    let mut delivered = Vec::new();
    let mut failed = Vec::new();
    for (_, user, sent) in outcomes {
        match sent {
            Ok(report) => delivered.push(UserDelivery {
                user,
                address: report.address,
            }),
            Err(e) => failed.push(UserFailure {
                user,
                code: e.status().0,
                detail: e.to_string(),
            }),
        }
    }
    Ok(Response::Users { delivered, failed })
}
