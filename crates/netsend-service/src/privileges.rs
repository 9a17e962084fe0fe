//! Dropping root after the privileged ports are bound.

use std::path::Path;

use nix::unistd::{self, Gid, Group, Uid, User};

use crate::service::StartError;

/// When running as root and `user` is not empty: hands the state directory to
/// `user`, then switches group and user for good. `keep_group` (the terminal
/// group, when messages are written to terminals; "" for none) stays a
/// supplementary group, as write(1) is setgid to it; a group that does not
/// exist is logged and left out. A non-root start keeps its identity (and its
/// groups: under systemd, `SupplementaryGroups=tty`) but gives up every
/// capability it was started with (systemd's
/// `AmbientCapabilities=CAP_NET_BIND_SERVICE` is needed only for binding).
pub fn drop_to(user: &str, state_dir: &Path, keep_group: &str) -> Result<(), StartError> {
    if !Uid::effective().is_root() {
        return drop_capabilities().map_err(|e| StartError::Privileges(String::new(), e));
    }
    if user.is_empty() {
        return Ok(());
    }
    let fail = |e: String| StartError::Privileges(user.to_owned(), e);
    let account = User::from_name(user)
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("no such user".into()))?;
    chown_tree(state_dir, account.uid, account.gid)
        .map_err(|e| fail(format!("chown {}: {e}", state_dir.display())))?;
    let mut groups = vec![account.gid];
    if !keep_group.is_empty() {
        match Group::from_name(keep_group) {
            Ok(Some(group)) => groups.push(group.gid),
            Ok(None) => tracing::warn!(
                group = keep_group,
                "terminal group does not exist: terminals may not be writable"
            ),
            Err(e) => {
                tracing::warn!(group = keep_group, error = %e, "terminal group lookup failed")
            }
        }
    }
    unistd::setgroups(&groups).map_err(|e| fail(e.to_string()))?;
    unistd::setgid(account.gid).map_err(|e| fail(e.to_string()))?;
    unistd::setuid(account.uid).map_err(|e| fail(e.to_string()))?;
    if unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(fail("could regain root after dropping it".into()));
    }
    tracing::info!(
        user,
        uid = account.uid.as_raw(),
        groups = ?groups.iter().map(|g| g.as_raw()).collect::<Vec<_>>(),
        "dropped privileges"
    );
    Ok(())
}

/// Empties the effective, permitted and inheritable capability sets (which
/// empties the ambient set too), so programs we run inherit none either.
fn drop_capabilities() -> Result<(), String> {
    use rustix::thread::{capabilities, set_capabilities, CapabilitySet, CapabilitySets};
    let held = capabilities(None).map_err(|e| format!("capget: {e}"))?;
    if held.permitted.is_empty() && held.inheritable.is_empty() {
        return Ok(());
    }
    let none = CapabilitySets {
        effective: CapabilitySet::empty(),
        permitted: CapabilitySet::empty(),
        inheritable: CapabilitySet::empty(),
    };
    set_capabilities(None, none).map_err(|e| format!("capset: {e}"))?;
    tracing::info!(dropped = ?held.permitted, "capabilities dropped after binding");
    Ok(())
}

fn chown_tree(dir: &Path, uid: Uid, gid: Gid) -> std::io::Result<()> {
    unistd::chown(dir, Some(uid), Some(gid))?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            unistd::chown(&path, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}
