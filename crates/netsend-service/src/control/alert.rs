//! `Alert`: an administrative alert raised by a client, checked and handed
//! to the Alerter, which batches it and sends it to every alert name.

use crate::control::{Caller, Context, ControlError};
use netsend_control::types::AlertRequest;
use netsend_control::Response;

/// Longest service name of an alert (NT's `SNLEN`).
const MAX_SERVICE_LEN: usize = 80;
/// Longest program name of an alert.
const MAX_PROGRAM_LEN: usize = 256;

/// Raises `alert` for `caller`, when the Alerter is on and the caller may
/// (root and `[alerter] groups`); answers with the per-name report.
pub(crate) async fn raise(
    ctx: &Context<'_>,
    caller: &Caller,
    alert: AlertRequest,
) -> Result<Response, ControlError> {
    let alerter = ctx.alerter.ok_or(ControlError::AlerterOff)?;
    let groups = ctx
        .config
        .alerter
        .raising_groups(&ctx.config.broadcast_group);
    caller.may_raise_alerts(&groups)?;
    check(&alert, ctx.config.limits.max_message_len)?;
    Ok(Response::Alert(alerter.raise(alert).await))
}

/// Refuses an empty or too long service name, program or text (the text
/// leaves room for the alert's mark line within `max_message_len`).
fn check(alert: &AlertRequest, max_message_len: usize) -> Result<(), ControlError> {
    let service = alert.service.trim();
    if service.is_empty() || service.chars().count() > MAX_SERVICE_LEN {
        return Err(ControlError::BadAlert(format!(
            "the service name must be 1 to {MAX_SERVICE_LEN} characters"
        )));
    }
    if alert.service.chars().any(char::is_control) {
        return Err(ControlError::BadAlert(
            "the service name holds control characters".into(),
        ));
    }
    if let Some(program) = &alert.program {
        if program.is_empty()
            || program.len() > MAX_PROGRAM_LEN
            || program.chars().any(char::is_control)
        {
            return Err(ControlError::BadAlert(format!(
                "the program name must be 1 to {MAX_PROGRAM_LEN} bytes without control characters"
            )));
        }
    }
    let room = max_message_len.saturating_sub(4 * MAX_SERVICE_LEN + MAX_PROGRAM_LEN + 100);
    if alert.text.trim().is_empty() || alert.text.len() > room {
        return Err(ControlError::BadAlert(format!(
            "the text must be 1 to {room} bytes ([limits] max_message_len less the alert's first line)"
        )));
    }
    Ok(())
}
