//! Logins and the names they bring: the computer name, the workgroup and
//! the aliases registered at start, and one message alias per logged-in
//! user, kept in step with utmp and systemd-logind.

use std::sync::Arc;

use netsend_proto::display::LogSafe;
use netsend_wire::name::suffix;
use netsend_wire::NetbiosName;

use super::Naming;
use crate::config::Config;
use crate::shutdown::Shutdown;

/// How often utmp is read for logins and logouts.
const LOGIN_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// Registers the computer name `<00>`, every alias `<03>` and the workgroup
/// `<00>` (group), and waits for the computer's messenger name.
pub(crate) async fn register_startup_names(naming: &Naming, config: &Config) {
    let (computer, aliases) = {
        let table = naming.aliases.lock().expect("alias table lock");
        (table.computer_name(), table.names().collect::<Vec<_>>())
    };
    let registrar = &naming.registrar;
    registrar.register(computer.with_suffix(suffix::WORKSTATION), false);
    for name in aliases.iter().skip(1) {
        registrar.register(*name, false);
    }
    if let Ok(workgroup) =
        NetbiosName::with_code_page(&config.workgroup, suffix::WORKSTATION, config.code_page)
    {
        registrar.register(workgroup, true);
    }
    if let Err(owner) = registrar.register_and_wait(computer).await {
        tracing::error!(
            name = %computer, owner = %LogSafe(&owner),
            "NERR_NoComputerName (2270): the computer name could not be added as a message alias; another host owns it"
        );
    }
}

/// Keeps one message alias per logged-in user until shutdown, and calls
/// `logged_in` with each user who has a session now and had none before
/// (remote ones included: their terminal is on this host).
pub(crate) async fn watch(
    naming: Arc<Naming>,
    config: Arc<Config>,
    shutdown: Shutdown,
    logged_in: impl Fn(String),
) {
    let mut present: Vec<String> = Vec::new();
    loop {
        let sessions = crate::system::users::logins(&config).await;
        let users = crate::system::users::local_users(&sessions);
        let mut everyone: Vec<String> = Vec::new();
        for s in sessions {
            if !everyone.contains(&s.user) {
                everyone.push(s.user);
            }
        }
        for user in everyone.iter().filter(|u| !present.contains(u)) {
            logged_in(user.clone());
        }
        present = everyone;
        let super::aliases::UserSync {
            added,
            removed,
            reclaimed,
        } = naming
            .aliases
            .lock()
            .expect("alias table lock")
            .sync_users(&users);
        if !added.is_empty() || !removed.is_empty() {
            tracing::info!(?users, "user aliases updated");
        }
        for r in reclaimed {
            tracing::warn!(
                name = %r.name,
                holder = r.holder.as_deref().unwrap_or(""),
                user = %r.user,
                "an added alias named after an account went to that account at its login"
            );
        }
        for name in added {
            naming.registrar.register(name, false);
        }
        for name in removed {
            naming.registrar.release(&name);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(LOGIN_POLL) => {}
        }
    }
}
