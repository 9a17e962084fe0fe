//! Login sessions from systemd-logind: `ListSessions` on
//! `org.freedesktop.login1` over the system bus, and each session's user,
//! class, state and remote host.

use std::time::Duration;

use zbus::zvariant::OwnedObjectPath;

use crate::system::users::UserSession;

/// How long asking logind may take before it counts as absent.
const TIMEOUT: Duration = Duration::from_secs(2);

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Manager {
    /// (session id, uid, user name, seat, object path) of every session.
    fn list_sessions(&self) -> zbus::Result<Vec<(String, u32, String, String, OwnedObjectPath)>>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Session",
    default_service = "org.freedesktop.login1"
)]
trait Session {
    /// Whether the session is remote (ssh, a remote X display).
    #[zbus(property)]
    fn remote(&self) -> zbus::Result<bool>;
    /// The remote host, if known.
    #[zbus(property)]
    fn remote_host(&self) -> zbus::Result<String>;
    /// "user" for people; "greeter", "lock-screen", "background" otherwise.
    #[zbus(property)]
    fn class(&self) -> zbus::Result<String>;
    /// "online", "active" or "closing".
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
}

/// The people's sessions logind knows (class `user`, not closing), with the
/// remote host of remote ones; `None` when logind cannot be reached (no
/// system bus, or no logind on it), so the caller falls back to utmp.
pub async fn sessions() -> Option<Vec<UserSession>> {
    tokio::time::timeout(TIMEOUT, ask()).await.ok()?.ok()
}

async fn ask() -> zbus::Result<Vec<UserSession>> {
    let bus = zbus::Connection::system().await?;
    let manager = ManagerProxy::new(&bus).await?;
    let mut found = Vec::new();
    for (_, _, user, _, path) in manager.list_sessions().await? {
        let session = SessionProxy::builder(&bus).path(path)?.build().await?;
        if session.class().await? != "user" || session.state().await? == "closing" {
            continue;
        }
        let host = session.remote_host().await.unwrap_or_default();
        let client = (session.remote().await? && !host.is_empty()).then_some(host);
        found.push(UserSession { user, client });
    }
    Ok(found)
}
