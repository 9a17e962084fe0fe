//! Who has a session on this host: login sessions from utmp, and the users of
//! Samba's SMB sessions (`smbstatus -b`) when Samba runs here.

use std::path::Path;

use crate::config::{Config, SessionSource};
use std::process::Command;

use utmp_rs::UtmpEntry;

/// One session of a user on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// The user name.
    pub user: String,
    /// The client machine the user sits at (remote login host or SMB client);
    /// `None` for a local login.
    pub client: Option<String>,
}

/// The distinct user names with a local login session among `sessions`. A
/// user logged in remotely sits at another machine, whose messenger holds
/// their name, so remote sessions give no alias here.
pub fn local_users(sessions: &[UserSession]) -> Vec<String> {
    let mut users: Vec<String> = Vec::new();
    for s in sessions {
        if s.client.is_none() && !users.contains(&s.user) {
            users.push(s.user.clone());
        }
    }
    users
}

/// The login sessions on this host, from where `config.sessions` says:
/// systemd-logind, utmp (`utmp_path`), or (`auto`) logind when it answers on
/// the system bus, else utmp.
pub async fn logins(config: &Config) -> Vec<UserSession> {
    if config.sessions != SessionSource::Utmp {
        match crate::system::logind::sessions().await {
            Some(sessions) => return sessions,
            None if config.sessions == SessionSource::Logind => {
                tracing::warn!(
                    "systemd-logind does not answer on the system bus: no login sessions"
                );
                return Vec::new();
            }
            None => {}
        }
    }
    let utmp = config.utmp_path.clone();
    tokio::task::spawn_blocking(move || login_sessions(&utmp))
        .await
        .unwrap_or_default()
}

/// Live login sessions from utmp, with the remote host when there is one.
pub fn login_sessions(path: &Path) -> Vec<UserSession> {
    live_logins(path)
        .into_iter()
        .map(|login| UserSession {
            user: login.user,
            client: (!login.host.is_empty() && !login.host.starts_with(':')).then_some(login.host),
        })
        .collect()
}

/// A terminal someone is logged in on, from utmp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginTerminal {
    /// The user name.
    pub user: String,
    /// The terminal line as utmp names it (`pts/3`, `tty1`), without `/dev/`.
    pub line: String,
}

/// The terminals of live login sessions (local and remote logins alike: a
/// remote login's terminal is a pseudo-terminal on this host), in utmp order.
pub fn login_terminals(path: &Path) -> Vec<LoginTerminal> {
    terminals_of(&live_logins(path))
}

/// [`login_terminals`] as last read, when that read is still fresh (utmp
/// unchanged and read less than a second ago); `None` when utmp
/// would have to be read again. Costs one stat(2), so it may be asked on
/// an async worker.
pub fn fresh_login_terminals(path: &Path) -> Option<Vec<LoginTerminal>> {
    let stamp = stamp(path);
    let cache = LOGINS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    fresh(&cache, path, stamp).map(terminals_of)
}

fn terminals_of(logins: &[LiveLogin]) -> Vec<LoginTerminal> {
    logins
        .iter()
        .map(|login| LoginTerminal {
            user: login.user.clone(),
            line: login.line.clone(),
        })
        .collect()
}

/// A utmp user-process entry whose process still exists.
#[derive(Clone)]
struct LiveLogin {
    user: String,
    line: String,
    host: String,
}

/// How long a read of utmp is reused while the file is unchanged: a busy
/// host showing many messages reads it once, not once per message.
const LOGINS_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The last read of utmp: its path, modification time and length, when it
/// was read, and what it held.
type LoginsCache = Option<(
    std::path::PathBuf,
    Option<std::time::SystemTime>,
    u64,
    std::time::Instant,
    Vec<LiveLogin>,
)>;

static LOGINS: std::sync::Mutex<LoginsCache> = std::sync::Mutex::new(None);

/// utmp's modification time and length: a rewritten file has others.
type Stamp = (Option<std::time::SystemTime>, u64);

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok();
    (
        meta.as_ref().and_then(|m| m.modified().ok()),
        meta.as_ref().map_or(0, std::fs::Metadata::len),
    )
}

/// The cached read, if it is of `path` as `stamp` says it is now and no
/// older than [`LOGINS_REUSE`].
fn fresh<'a>(cache: &'a LoginsCache, path: &Path, stamp: Stamp) -> Option<&'a [LiveLogin]> {
    let (p, t, l, at, logins) = cache.as_ref()?;
    (p == path && (*t, *l) == stamp && at.elapsed() < LOGINS_REUSE).then_some(logins.as_slice())
}

/// Every live, named user-process entry of the utmp file at `path` (none when
/// it is missing or unreadable), reused for up to [`LOGINS_REUSE`] while the
/// file is unchanged.
fn live_logins(path: &Path) -> Vec<LiveLogin> {
    let stamp = stamp(path);
    let mut cache = LOGINS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(logins) = fresh(&cache, path, stamp) {
        return logins.to_vec();
    }
    let logins = read_live_logins(path);
    *cache = Some((
        path.to_owned(),
        stamp.0,
        stamp.1,
        std::time::Instant::now(),
        logins.clone(),
    ));
    logins
}

fn read_live_logins(path: &Path) -> Vec<LiveLogin> {
    let Ok(entries) = utmp_rs::parse_from_path(path) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| match entry {
            UtmpEntry::UserProcess {
                pid,
                user,
                host,
                line,
                ..
            } => {
                let alive = Path::new(&format!("/proc/{pid}")).exists();
                (alive && !user.is_empty()).then_some(LiveLogin { user, line, host })
            }
            _ => None,
        })
        .collect()
}

/// The users of Samba's SMB sessions on this host, from `smbstatus -b`
/// (reading Samba's configuration at `samba_config`, or its default); empty
/// when Samba is not installed or not running.
pub fn smb_sessions(samba_config: Option<&Path>) -> Vec<UserSession> {
    let mut smbstatus = Command::new("smbstatus");
    smbstatus.arg("-b");
    if let Some(conf) = samba_config {
        smbstatus.arg("-s").arg(conf);
    }
    let Ok(out) = smbstatus.output() else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    parse_smbstatus(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `smbstatus -b`: after the dashed line, `PID USER GROUP MACHINE ...`,
/// where MACHINE is `192.0.2.20 (ipv4:192.0.2.20:51234)`.
fn parse_smbstatus(text: &str) -> Vec<UserSession> {
    text.lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let _pid = fields.next()?.parse::<u32>().ok()?;
            let user = fields.next()?.to_owned();
            let _group = fields.next()?;
            let machine = fields.next()?.to_owned();
            Some(UserSession {
                user,
                client: Some(machine),
            })
        })
        .collect()
}

/// Everyone with a session here, one entry per person (their first session):
/// the login sessions `logins`, then Samba's SMB sessions.
pub fn recipients(logins: Vec<UserSession>, samba_config: Option<&Path>) -> Vec<UserSession> {
    let mut people: Vec<UserSession> = Vec::new();
    for s in logins.into_iter().chain(smb_sessions(samba_config)) {
        if !people.iter().any(|p| p.user == s.user) {
            people.push(s);
        }
    }
    people
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smbstatus_output_parses() {
        let text = "\nSamba version 4.17.12-Debian\nPID     Username     Group        Machine                                   Protocol Version  Encryption           Signing\n\
            ----------------------------------------------------------------------------------------------------------------------------------------\n\
            4242    alice        alice        192.0.2.20 (ipv4:192.0.2.20:51234)        SMB3_11           -                    partial(AES-128-CMAC)\n\n";
        assert_eq!(
            parse_smbstatus(text),
            [UserSession {
                user: "alice".into(),
                client: Some("192.0.2.20".into())
            }]
        );
        assert!(parse_smbstatus("no sessions").is_empty());
    }
}
