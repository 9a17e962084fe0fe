//! systemd's notification socket (`sd_notify(3)`): the service says
//! `READY=1` once it serves, `RELOADING=1` and `READY=1` around a reload,
//! `STOPPING=1` at a stop, `STATUS=` lines for `systemctl status`, and
//! `WATCHDOG=1` while its main loop makes progress (`WatchdogSec=`).
//!
//! The socket is `$NOTIFY_SOCKET`: a path, or an abstract name written
//! `@name`. Without it (not started by systemd) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where notifications go, and how often the watchdog wants feeding.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    watchdog: Option<Duration>,
}

/// The socket address `$NOTIFY_SOCKET` names: a path (`/run/...`) or an
/// abstract name (`@name`); `None` for anything else (`vsock:` is not
/// supported).
fn notify_address(value: &str) -> Option<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt as _;
    if let Some(name) = value.strip_prefix('@') {
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).ok()
    } else if value.starts_with('/') {
        std::os::unix::net::SocketAddr::from_pathname(value).ok()
    } else {
        None
    }
}

/// Half of `$WATCHDOG_USEC` (systemd's advice: notify at half the
/// timeout), when it is meant for `pid` (`$WATCHDOG_PID` unset or ours).
fn watchdog_interval(usec: Option<&str>, for_pid: Option<&str>, pid: u32) -> Option<Duration> {
    if for_pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(pid)) {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` and
    /// removes them from the environment, so that no program the service
    /// starts (a delivery hook) talks to systemd in its name. Call it
    /// before any other thread runs.
    pub fn take_from_env() -> Self {
        let var = |name| std::env::var(name).ok();
        let (socket, usec, pid) = (
            var("NOTIFY_SOCKET"),
            var("WATCHDOG_USEC"),
            var("WATCHDOG_PID"),
        );
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            std::env::remove_var(name);
        }
        let Some(address) = socket.as_deref().and_then(notify_address) else {
            if let Some(s) = socket {
                eprintln!(
                    "netsend: NOTIFY_SOCKET {} is not a path or @name; not notifying",
                    netsend_proto::display::escape_log(&s)
                );
            }
            return Self::default();
        };
        let socket = match UnixDatagram::unbound() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("netsend: cannot notify systemd: {e}");
                return Self::default();
            }
        };
        Self {
            socket: Some((socket, address)),
            watchdog: watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id()),
        }
    }

    /// Sends `state` (`KEY=value` lines). A failure is logged and
    /// otherwise ignored: the service does not stop because systemd is
    /// not listening.
    pub fn notify(&self, state: &str) {
        if let Some((socket, address)) = &self.socket {
            if let Err(e) = socket.send_to_addr(state.as_bytes(), address) {
                tracing::warn!(error = %e, "cannot notify systemd");
            }
        }
    }

    /// `STATUS=text`, the text on one line (control characters escaped).
    pub fn status(&self, text: &str) {
        self.notify(&format!(
            "STATUS={}",
            netsend_proto::display::escape_log(text)
        ));
    }

    /// How often to send `WATCHDOG=1` when the unit has `WatchdogSec=`.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.socket.is_some())
    }

    /// `RELOADING=1` with the monotonic time, as systemd 253 and later
    /// want it.
    pub fn reloading(&self) {
        let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0) / 1_000
        });
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_abstract_names_are_notify_sockets() {
        use std::os::linux::net::SocketAddrExt as _;
        let a = notify_address("@netsend/notify").unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"netsend/notify"[..]));
        let p = notify_address("/run/systemd/notify").unwrap();
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        assert!(notify_address("vsock:2:1234").is_none());
        assert!(notify_address("").is_none());
    }

    #[test]
    fn the_watchdog_is_fed_at_half_its_timeout_and_only_for_our_pid() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(watchdog_interval(Some("30000000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn notifications_arrive_as_datagrams_on_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("netsend-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&address).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier {
            socket: Some((UnixDatagram::unbound().unwrap(), address)),
            watchdog: None,
        };
        n.notify("READY=1");
        n.status("two\nlines");
        n.reloading();
        let mut buf = [0; 256];
        let mut next = || {
            let len = listener.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..len]).into_owned()
        };
        assert_eq!(next(), "READY=1");
        assert_eq!(next(), "STATUS=two\\nlines");
        assert!(next().starts_with("RELOADING=1\nMONOTONIC_USEC="));
    }
}
