//! Dropping root after the privileged ports are bound.

use std::path::Path;

use nix::unistd::{self, Gid, Group, Uid, User};

use netsend_proto::display::LogSafe;

/// Why privileges could not be dropped: for `user` (empty: giving up the
/// capabilities of a non-root start), the step that failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot drop privileges to user {user:?}: {reason}")]
pub struct PrivilegeError {
    /// The account the service was to run as.
    pub user: String,
    /// What failed.
    pub reason: String,
}

/// When running as root and `user` is not empty: hands the state directory to
/// `user`, then switches group and user for good. `keep_group` (the terminal
/// group, when messages are written to terminals; "" for none) stays a
/// supplementary group, as write(1) is setgid to it; a group that does not
/// exist is logged and left out. A non-root start keeps its identity (and its
/// groups: under systemd, `SupplementaryGroups=tty`) but gives up every
/// capability it was started with (systemd's
/// `AmbientCapabilities=CAP_NET_BIND_SERVICE` is needed only for binding).
pub fn drop_to(user: &str, state_dir: &Path, keep_group: &str) -> Result<(), PrivilegeError> {
    if !Uid::effective().is_root() {
        return drop_capabilities().map_err(|e| PrivilegeError {
            user: String::new(),
            reason: e,
        });
    }
    if user.is_empty() {
        return Ok(());
    }
    let fail = |reason: String| PrivilegeError {
        user: user.to_owned(),
        reason,
    };
    let account = User::from_name(user)
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail(no_such_user(user)))?;
    chown_tree(state_dir, account.uid, account.gid).map_err(fail)?;
    let mut groups = vec![account.gid];
    if !keep_group.is_empty() {
        match Group::from_name(keep_group) {
            Ok(Some(group)) => groups.push(group.gid),
            Ok(None) => tracing::warn!(
                group = keep_group,
                "terminal group does not exist: terminals may not be writable"
            ),
            Err(e) => {
                tracing::warn!(group = keep_group, error = %LogSafe(&e), "terminal group lookup failed")
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

/// What to do when the service user does not exist.
fn no_such_user(user: &str) -> String {
    format!(
        "no such user; create it as a system account (`systemd-sysusers \
         packaging/sysusers.d/netsend.conf`, or `useradd --system --no-create-home \
         --shell /usr/sbin/nologin {user}`), or set `user` to another account used by \
         no other daemon"
    )
}

/// Hands the state directory and the regular files in it to `uid`/`gid`,
/// as root, without trusting anything the service user could have planted:
/// the directory is opened without following a symbolic link and must be
/// owned by root or by `uid` already (another user's directory is refused);
/// entries are changed relative to it with `AT_SYMLINK_NOFOLLOW`, and only
/// regular files with a single link are changed (a symbolic or hard link to
/// a file elsewhere, such as `/etc/shadow`, is left alone and logged).
/// Errors name paths, never file contents.
fn chown_tree(dir: &Path, uid: Uid, gid: Gid) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};

    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{fstatat, SFlag};

    let shown = dir.display();
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits())
        .open(dir)
        .map_err(|e| format!("{shown}: {e} (it must be a directory, not a symbolic link)"))?;
    let owner = handle
        .metadata()
        .map_err(|e| format!("{shown}: {e}"))?
        .uid();
    if owner != 0 && owner != uid.as_raw() {
        return Err(format!(
            "{shown} is owned by uid {owner}, neither root nor the service user: \
             refusing to hand another user's directory over (chown it to root first)"
        ));
    }
    unistd::fchown(&handle, Some(uid), Some(gid)).map_err(|e| format!("chown {shown}: {e}"))?;
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{shown}: {e}"))? {
        let name = entry.map_err(|e| format!("{shown}: {e}"))?.file_name();
        let path = dir.join(&name);
        let stat = fstatat(&handle, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if kind != SFlag::S_IFREG {
            if kind == SFlag::S_IFLNK {
                tracing::warn!(path = %path.display(), "symbolic link in the state directory left alone");
            }
            continue;
        }
        if stat.st_nlink != 1 {
            tracing::warn!(path = %path.display(), links = stat.st_nlink, "file with several links in the state directory left alone");
            continue;
        }
        unistd::fchownat(
            &handle,
            name.as_os_str(),
            Some(uid),
            Some(gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Opens the daemon's log (`STATE_DIR/netsend.log`) for appending the way a
/// root start-up may trust it: never through a symbolic link (`O_NOFOLLOW`),
/// only a regular file with a single link (not a hard link to a file
/// elsewhere), created with mode 0640.
pub fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.nlink() != 1 {
        return Err(std::io::Error::other(
            "not a regular file with a single link; refusing to write to it",
        ));
    }
    Ok(file)
}
