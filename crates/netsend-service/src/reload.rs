//! Configuration reload (SIGHUP, `systemctl reload netsend`): which keys
//! differ between the configuration in force and the file as it reads now,
//! and which of them the running service takes live ([`diff`], a pure
//! function); and the outcome of the last reload, for status
//! ([`ReloadLog`]). Start-up (`start`) applies what `diff` allows.

use std::collections::BTreeMap;
use std::sync::Mutex;

use netsend_control::types::ReloadStatus;
use serde_json::Value;

use crate::config::{Config, NetworkConfig};

/// Keys (and whole tables) that only a restart changes: what is bound or
/// opened once at start (ports, bind addresses, interfaces, the control
/// socket, the state directory and its inbox, the remote-call channel, the
/// metrics endpoint),
/// the identity the service runs as, and the names it registers and how.
/// Every other key is taken live.
const RESTART_KEYS: &[&str] = &[
    "computer_name",
    "workgroup",
    "code_page",
    "state_dir",
    "control_socket",
    "user",
    "sessions",
    "utmp_path",
    "network",
    "remote",
    "wins",
    "wins_server",
    "names",
    "limits.max_connections",
    "limits.inbox_quota",
    "display.terminal_group",
    "metrics",
    "alerter",
    "gateway",
];

/// Keys under a restart-only table that are nevertheless live.
const LIVE_EXCEPTIONS: &[&str] = &["network.node_status"];

/// What a reload would change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Keys the running service takes at once, in key order.
    pub live: Vec<String>,
    /// Keys that differ but take effect only at the next restart.
    pub restart: Vec<String>,
}

impl Changes {
    /// Whether the file says nothing new.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.restart.is_empty()
    }
}

/// Whether `key` is `prefix` or a key inside the table `prefix`.
fn under(key: &str, prefix: &str) -> bool {
    key == prefix
        || key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Whether a change of `key` needs a restart.
fn needs_restart(key: &str) -> bool {
    !LIVE_EXCEPTIONS.iter().any(|p| under(key, p)) && RESTART_KEYS.iter().any(|p| under(key, p))
}

/// Every leaf of `value` by its dotted key; a list (hooks, static names,
/// networks) is one leaf, compared whole.
fn leaves(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// The keys that differ between `old` (in force) and `new` (as the file
/// reads now), each as live or needing a restart.
pub fn diff(old: &Config, new: &Config) -> Changes {
    let flat = |c: &Config| {
        let mut out = BTreeMap::new();
        // A configuration always serialises (plain data, string keys).
        leaves(
            "",
            &serde_json::to_value(c).unwrap_or(Value::Null),
            &mut out,
        );
        out
    };
    let (old, new) = (flat(old), flat(new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut changes = Changes::default();
    for key in keys {
        if old.get(key) == new.get(key) {
            continue;
        }
        // A table that appears or goes (`[wins]`) is one change.
        let table = key.split('.').next().unwrap_or(key);
        let key = if old.contains_key(table) != new.contains_key(table) {
            table
        } else {
            key
        };
        let list = if needs_restart(key) {
            &mut changes.restart
        } else {
            &mut changes.live
        };
        if list.last().is_none_or(|k| k != key) {
            list.push(key.to_owned());
        }
    }
    changes
}

/// The configuration to put in force when the file reads `new` and the
/// service started with `started`: `new`, but with every key that needs a
/// restart as it was at start, so that nothing reads a port, a name or a
/// path the running service does not have.
pub fn in_force(started: &Config, new: &Config) -> Config {
    let mut c = new.clone();
    c.computer_name.clone_from(&started.computer_name);
    c.workgroup.clone_from(&started.workgroup);
    c.code_page = started.code_page;
    c.state_dir.clone_from(&started.state_dir);
    c.control_socket.clone_from(&started.control_socket);
    c.user.clone_from(&started.user);
    c.sessions = started.sessions;
    c.utmp_path.clone_from(&started.utmp_path);
    c.network = NetworkConfig {
        node_status: new.network.node_status,
        ..started.network.clone()
    };
    c.remote = started.remote.clone();
    c.wins.clone_from(&started.wins);
    c.wins_server = started.wins_server.clone();
    c.names = started.names.clone();
    c.limits.max_connections = started.limits.max_connections;
    c.limits.inbox_quota = started.limits.inbox_quota;
    c.display
        .terminal_group
        .clone_from(&started.display.terminal_group);
    c.metrics = started.metrics.clone();
    c.alerter = started.alerter.clone();
    c.gateway.clone_from(&started.gateway);
    c
}

/// The outcome of the last reload, as status shows it.
#[derive(Debug)]
pub struct ReloadLog(Mutex<ReloadStatus>);

impl Default for ReloadLog {
    fn default() -> Self {
        Self(Mutex::new(ReloadStatus {
            state: "none".into(),
            ..ReloadStatus::default()
        }))
    }
}

impl ReloadLog {
    /// The last reload's outcome.
    pub fn status(&self) -> ReloadStatus {
        self.0.lock().expect("reload log lock").clone()
    }

    /// Records a reload at `at_ms` that applied `changes`
    /// (`changes.restart`: every key whose value in the file differs from
    /// the one the service started with).
    pub fn applied(&self, at_ms: i64, changes: &Changes) {
        let mut s = self.0.lock().expect("reload log lock");
        *s = ReloadStatus {
            state: "applied".into(),
            at: Some(at_ms),
            error: None,
            applied: changes.live.clone(),
            restart_needed: changes.restart.clone(),
        };
    }

    /// Records a reload at `at_ms` that kept the configuration in force
    /// because the new one is not acceptable (`error`).
    pub fn rejected(&self, at_ms: i64, error: String) {
        let mut s = self.0.lock().expect("reload log lock");
        s.state = "rejected".into();
        s.at = Some(at_ms);
        s.error = Some(error);
        s.applied.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        let mut c: Config = toml::from_str(toml).unwrap();
        c.computer_name = "HOST".into();
        c
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let a = config("");
        assert!(diff(&a, &a.clone()).is_empty());
    }

    #[test]
    fn filters_limits_hooks_display_and_logging_are_live() {
        let old = config("");
        let new = config(
            "[filter]\ndeny_networks = [\"192.0.2.0/24\"]\n\
             [limits]\nmessages_per_minute = 5\nmax_connections_per_source = 2\n\
             [display]\nterminals = false\n[log]\nmessages = true\n\
             [[hooks]]\nalias = \"*\"\nexec = [\"/bin/true\"]\n",
        );
        let c = diff(&old, &new);
        assert!(c.restart.is_empty(), "{c:?}");
        for key in [
            "filter.deny_networks",
            "limits.messages_per_minute",
            "limits.max_connections_per_source",
            "display.terminals",
            "log.messages",
            "hooks",
        ] {
            assert!(c.live.iter().any(|k| k == key), "{key}: {c:?}");
        }
    }

    #[test]
    fn ports_addresses_state_and_user_need_a_restart() {
        let old = config("");
        let new = config(
            "state_dir = \"/elsewhere\"\nuser = \"nobody\"\n\
             [network]\nsession_port = 1139\nbind = [\"192.0.2.1\"]\nnode_status = \"none\"\n\
             [limits]\nmax_connections = 7\nmax_message_len = 100\n",
        );
        let c = diff(&old, &new);
        assert_eq!(
            c.restart,
            [
                "limits.max_connections",
                "network.bind",
                "network.session_port",
                "state_dir",
                "user"
            ]
        );
        // Beside them, what is live still is.
        assert_eq!(c.live, ["limits.max_message_len", "network.node_status"]);
    }

    #[test]
    fn what_is_put_in_force_differs_from_the_start_in_live_keys_only() {
        let started = config("");
        let new = config(
            "computer_name = \"OTHER\"\nworkgroup = \"W\"\nuser = \"nobody\"\n\
             [network]\nsession_port = 1139\nnode_status = \"none\"\n\
             [names]\nconflict_retry_secs = 9\n[wins]\nserver = \"192.0.2.9\"\n\
             [wins_server]\nenabled = true\nmax_names = 50\n\
             [remote]\nlisten = true\n[metrics]\nlisten = \"127.0.0.1:9139\"\n\
             [limits]\nmax_connections = 7\ninbox_quota = 3\nmessage_burst = 2\n\
             [display]\nterminal_group = \"users\"\npending_hours = 1\n",
        );
        let mut new = new;
        new.computer_name = "OTHER".into();
        let all = diff(&started, &new);
        assert!(!all.restart.is_empty());
        let kept = in_force(&started, &new);
        let c = diff(&started, &kept);
        assert!(c.restart.is_empty(), "{c:?}");
        assert_eq!(c.live, all.live);
        assert!(diff(&kept, &new).live.is_empty());
    }

    #[test]
    fn a_table_that_comes_or_goes_is_one_key() {
        let old = config("");
        let new = config("[wins]\nserver = \"192.0.2.9\"\n");
        assert_eq!(diff(&old, &new).restart, ["wins"]);
        assert_eq!(diff(&new, &old).restart, ["wins"]);
        let new = config("[wins_server]\nenabled = true\n");
        assert_eq!(diff(&old, &new).restart, ["wins_server.enabled"]);
    }

    #[test]
    fn a_rejected_reload_keeps_the_keys_that_wait_for_a_restart() {
        let log = ReloadLog::default();
        assert_eq!(log.status().state, "none");
        let changes = Changes {
            live: vec!["limits.message_burst".into()],
            restart: vec!["network.session_port".into()],
        };
        log.applied(1, &changes);
        log.rejected(2, "bad".into());
        let s = log.status();
        assert_eq!(s.state, "rejected");
        assert_eq!(s.error.as_deref(), Some("bad"));
        assert_eq!(s.restart_needed, ["network.session_port"]);
        assert!(s.applied.is_empty());
    }
}
