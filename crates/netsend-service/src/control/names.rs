//! Message aliases: `Names` (list, with where each stands on the network),
//! `NameAdd`, `NameDel` and `NameForward`.

use std::time::{Duration, Instant};

use netsend_proto::registration::{NameReport, NameState};
use netsend_wire::name::suffix;
use netsend_wire::status::NetApiStatus;
use netsend_wire::NetbiosName;

use crate::control::{Caller, Context, ControlError};
use crate::naming::aliases::Alias;
use crate::naming::registrar::Scope;
use netsend_control::types::AliasStatus;
use netsend_control::Response;

/// Every alias with its network state and forward, and the caller's
/// notices (shown once).
pub(crate) fn list(ctx: &Context<'_>, caller: &Caller) -> Result<Response, ControlError> {
    let states = states(ctx);
    let mut table = ctx.aliases.lock().expect("alias table lock");
    let names = states
        .into_iter()
        .map(|(alias, _, network)| AliasStatus {
            network,
            forward: table.forward_of(&alias.name).map(String::from),
            alias,
        })
        .collect();
    let notices = table.take_notices(&caller.login);
    Ok(Response::Names { names, notices })
}

/// Every alias with its state in one word ([`crate::naming::state_word`])
/// and in words.
pub(crate) fn states(ctx: &Context<'_>) -> Vec<(Alias, &'static str, String)> {
    let aliases: Vec<(NetbiosName, Alias)> = {
        let table = ctx.aliases.lock().expect("alias table lock");
        table.names().zip(table.list().cloned()).collect()
    };
    aliases
        .into_iter()
        .map(|(name, alias)| {
            let states = ctx.registrar.states(&name);
            let words = network_state(&states, &ctx.registrar.reports(&name), Instant::now());
            (alias, crate::naming::state_word(&states), words)
        })
        .collect()
}

/// Adds the alias `name` owned by the caller and registers it on the
/// network; it is taken back when another host holds the name.
pub(crate) async fn add(
    ctx: &Context<'_>,
    caller: &Caller,
    name: String,
) -> Result<Response, ControlError> {
    let refused = |status| ControlError::Alias {
        action: "add",
        name: name.clone(),
        status,
    };
    let text = ctx
        .aliases
        .lock()
        .expect("alias table lock")
        .alias_text(&name);
    if let Ok(text) = text {
        caller.may_add_alias(&text, &name)?;
    }
    let added = ctx.aliases.lock().expect("alias table lock").add(
        &name,
        Some(caller.login.clone()),
        caller.is_root(),
    );
    let alias = match added {
        Ok(alias) => alias,
        Err(NetApiStatus::NERR_TOO_MANY_NAMES) if !caller.is_root() => {
            return Err(ControlError::TooManyAliases {
                name,
                per_user: ctx.config.limits.max_aliases_per_user,
            })
        }
        Err(status) => return Err(refused(status)),
    };
    let netbios = NetbiosName::with_code_page(&alias.name, suffix::MESSENGER, ctx.config.code_page)
        .map_err(|_| refused(NetApiStatus::ERROR_INVALID_PARAMETER))?;
    match ctx.registrar.register_and_wait(netbios).await {
        Ok(()) => Ok(Response::Ok),
        Err(owner) => {
            let _ = ctx
                .aliases
                .lock()
                .expect("alias table lock")
                .delete(&alias.name, None);
            ctx.registrar.release(&netbios);
            Err(ControlError::NameInUse {
                alias: alias.name,
                owner,
            })
        }
    }
}

/// Deletes the alias `name` (an ordinary user: only their own) and
/// releases it on the network.
pub(crate) fn delete(
    ctx: &Context<'_>,
    caller: &Caller,
    name: String,
) -> Result<Response, ControlError> {
    let deleted = ctx
        .aliases
        .lock()
        .expect("alias table lock")
        .delete(&name, caller.user.as_deref());
    let alias = deleted.map_err(|status| ControlError::Alias {
        action: "delete",
        name,
        status,
    })?;
    if let Ok(n) = NetbiosName::with_code_page(&alias.name, suffix::MESSENGER, ctx.config.code_page)
    {
        ctx.registrar.release(&n);
    }
    Ok(Response::Ok)
}

/// Sets (or with `host` `None` cancels) the forward of the alias `name`;
/// an ordinary user forwards only their own aliases.
pub(crate) fn forward(
    ctx: &Context<'_>,
    caller: &Caller,
    name: String,
    host: Option<String>,
) -> Result<Response, ControlError> {
    ctx.forward.set(&name, host, caller.user.as_deref())?;
    Ok(Response::Ok)
}

/// Describes where a name stands on the network: over every broadcast segment
/// and at the WINS server, and what happened to it lately on the segments
/// (`reports`, read at `now`).
fn network_state(states: &[(Scope, NameState)], reports: &[NameReport], now: Instant) -> String {
    if states.is_empty() {
        return "local (no broadcast interface)".into();
    }
    let state = crate::naming::state_word(states);
    let mut text = if let Some((_, NameState::Conflict { owner })) = states
        .iter()
        .find(|(_, s)| matches!(s, NameState::Conflict { .. }))
    {
        format!("{state} (owned by {owner})")
    } else {
        let mut scopes: Vec<&str> = states
            .iter()
            .map(|(scope, _)| match scope {
                Scope::Broadcast => "broadcast",
                Scope::Wins => "WINS",
            })
            .collect();
        scopes.dedup();
        format!("{state} ({})", scopes.join(", "))
    };
    let secs = |d: Duration| format!("{} s", d.as_secs());
    if let Some(at) = reports.iter().filter_map(|r| r.retry_at).min() {
        text += &format!(
            ", tried again in {}",
            secs(at.saturating_duration_since(now))
        );
    }
    for r in reports {
        if let (NameState::Registered, Some((owner, at))) = (r.state, r.last_conflict) {
            text += &format!(
                "; was held by {owner} (conflict {} ago), ours again",
                secs(now.saturating_duration_since(at))
            );
        }
        if let Some(demand) = r.checking {
            text += &format!("; checking a {}", demand.as_str());
        }
        if let Some(last) = r.last_ignored {
            text += &format!(
                "; ignored {} unverified demand(s), the last a {} from {} {} ago",
                r.ignored,
                last.demand.as_str(),
                last.from,
                secs(now.saturating_duration_since(last.at))
            );
        }
    }
    text
}
