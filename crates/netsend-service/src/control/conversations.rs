//! Conversations: the sent archive (`SentList`), the exchange with one
//! correspondent (`Thread`), replies (`Reply`) and away messages (`Away`,
//! `AwaySet`).

use netsend_proto::display::LogSafe;

use crate::control::send::{archive, failed, host_of, Archived};
use crate::control::{fit_page, Caller, Context, ControlError};
use crate::store::{AwayState, ListFilter, SentFilter};
use netsend_control::types::{ReplyReport, SentKind, ThreadEntry};
use netsend_control::Response;

/// A page of the sent archive that `filter` selects.
pub(crate) async fn sent_list(
    ctx: &Context<'_>,
    filter: SentFilter,
    count: bool,
) -> Result<Response, ControlError> {
    // One more than the page, to tell whether more follow.
    let limit = filter.limit;
    let asked = SentFilter {
        limit: limit + 1,
        ..filter.clone()
    };
    let (mut records, total) = ctx
        .inbox
        .sent_list(&asked, count)
        .await
        .map_err(ControlError::read)?;
    let mut more = records.len() > limit;
    if filter.newest {
        // The newest `limit`: the extra one is the oldest.
        if more {
            records.remove(0);
        }
        records.reverse();
        more |= fit_page(&mut records);
        records.reverse();
    } else {
        records.truncate(limit);
        more |= fit_page(&mut records);
    }
    Ok(Response::SentList {
        records,
        more,
        total,
    })
}

/// What a `Thread` request asks for.
#[derive(Debug, Clone)]
pub(crate) struct ThreadPage {
    /// The correspondent.
    pub(crate) with: String,
    /// At most this many entries.
    pub(crate) limit: usize,
    /// Only received messages with a smaller id.
    pub(crate) received_before: Option<i64>,
    /// Only sent records with a smaller id.
    pub(crate) sent_before: Option<i64>,
}

/// The newest entries of the exchange with `page.with`: messages received
/// from that name and sent to it, in time order.
pub(crate) async fn thread(
    ctx: &Context<'_>,
    caller: &Caller,
    page: ThreadPage,
) -> Result<Response, ControlError> {
    let received = ListFilter {
        user: caller.user.clone(),
        limit: page.limit,
        before_id: page.received_before,
        from: Some(page.with.clone()),
        newest: true,
        ..ListFilter::default()
    };
    let (received, received_total) = ctx
        .inbox
        .list_counted(&received, true)
        .await
        .map_err(ControlError::read)?;
    let sent = SentFilter {
        owner: caller.sent_owner().map(String::from),
        before_id: page.sent_before,
        limit: page.limit,
        newest: true,
        to: Some(page.with),
        ..SentFilter::default()
    };
    let (sent, sent_total) = ctx
        .inbox
        .sent_list(&sent, true)
        .await
        .map_err(ControlError::read)?;
    let full = received.len() == page.limit || sent.len() == page.limit;
    let mut entries: Vec<ThreadEntry> = received
        .into_iter()
        .map(ThreadEntry::Received)
        .chain(sent.into_iter().map(ThreadEntry::Sent))
        .collect();
    entries.sort_by_key(ThreadEntry::at);
    let dropped = entries.len().saturating_sub(page.limit);
    entries.drain(..dropped);
    entries.reverse();
    let cut = fit_page(&mut entries);
    entries.reverse();
    Ok(Response::Thread {
        entries,
        more: full || dropped > 0 || cut,
        total: received_total.unwrap_or(0) + sent_total.unwrap_or(0),
    })
}

/// Replies to message `id` with `text`, as the caller: to its sender at
/// the host it came from, or to that host's computer name.
pub(crate) async fn reply(
    ctx: &Context<'_>,
    caller: &Caller,
    id: i64,
    text: String,
) -> Result<Response, ControlError> {
    let message = ctx
        .inbox
        .get(id, caller.user.as_deref())
        .await
        .map_err(ControlError::read)?
        .ok_or(ControlError::NoMessage(id))?;
    let (from, text) = caller.sender_identity(None, text);
    let sent = ctx
        .network
        .reply(message.clone(), from.clone(), text.clone())
        .await;
    let archived = |outcome: String, to: String, address: String| Archived {
        kind: SentKind::Directed,
        to,
        from: from.clone(),
        address,
        text: text.clone(),
        outcome,
        queue_id: None,
    };
    match sent {
        Ok((mut report, fallback)) => {
            tracing::info!(event = "send", id, from = %LogSafe(&from), to = %LogSafe(&report.to), peer = %report.address, transport = "session", "reply sent");
            let record = archived(
                "delivered".to_owned(),
                report.to.clone(),
                host_of(&report.address),
            );
            report.receipt_id = archive(ctx, caller, record).await;
            Ok(Response::Replied(ReplyReport {
                sent: report,
                fallback: fallback.map(|f| f.to_string()),
            }))
        }
        Err(e) => {
            tracing::info!(event = "send", id, from = %LogSafe(&from), to = %LogSafe(&message.from), reason = %LogSafe(&e), transport = "session", "reply not sent");
            archive(
                ctx,
                caller,
                archived(failed(&e), message.from, String::new()),
            )
            .await;
            Err(e.into())
        }
    }
}

/// The caller's away message, if they are away.
pub(crate) async fn away(ctx: &Context<'_>, caller: &Caller) -> Result<Response, ControlError> {
    Ok(Response::Away {
        state: ctx.away.get(&caller.login),
    })
}

/// Sets (or with `None` ends) the caller's away message, durably first.
pub(crate) async fn set_away(
    ctx: &Context<'_>,
    caller: &Caller,
    text: Option<String>,
) -> Result<Response, ControlError> {
    let text = text
        .as_deref()
        .map(netsend_proto::away::check_text)
        .transpose()?;
    let state = text.map(|text| AwayState {
        user: caller.login.clone(),
        text: text.to_owned(),
        since: crate::store::now_ms(),
    });
    ctx.inbox
        .set_away(&caller.login, state.clone())
        .await
        .map_err(ControlError::store)?;
    tracing::info!(event = "away", user = %LogSafe(&caller.login), away = state.is_some(), "away message changed");
    ctx.away.set(&caller.login, state.clone());
    Ok(Response::Away { state })
}
