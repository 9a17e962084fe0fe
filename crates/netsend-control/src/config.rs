//! Where the configuration is and what a client reads of it.
//!
//! The file is found by [`discover`]: `--config`, else `$NETSEND_CONFIG`,
//! else `/etc/netsend/netsend.toml` if it exists, else none (the built-in
//! defaults). A client reads only the keys it needs ([`ClientConfig`]) and
//! ignores the rest, so `libnetapi32` needs none of the service's types; the
//! service's full configuration takes its defaults for these keys from the
//! constants here, so both agree.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Names the configuration file.
pub const CONFIG_ENV: &str = "NETSEND_CONFIG";
/// The configuration file read when none is named, if it exists.
pub const SYSTEM_CONFIG: &str = "/etc/netsend/netsend.toml";
/// Default `control_socket`.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/netsend/control.sock";
/// Default `[remote] port`: the remote-call channel's TCP port.
pub const DEFAULT_REMOTE_PORT: u16 = 2139;
/// Default `[display] pending_hours`.
pub const DEFAULT_PENDING_HOURS: u64 = 72;

/// The configuration file to read: `explicit` (`--config`), else
/// `$NETSEND_CONFIG` if set and not empty, else [`SYSTEM_CONFIG`] if it
/// exists; `None`: the built-in defaults.
pub fn discover(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit
        .or_else(|| {
            std::env::var_os(CONFIG_ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| {
            Path::new(SYSTEM_CONFIG)
                .exists()
                .then(|| SYSTEM_CONFIG.into())
        })
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {1}", path = .0.display())]
    Read(PathBuf, std::io::Error),
    /// The TOML is malformed, or a key the client reads has a bad value.
    #[error("{path}: {1}", path = .0.display())]
    Parse(PathBuf, toml::de::Error),
}

/// The keys of the configuration a client uses; every other key is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClientConfig {
    /// `computer_name`: calls naming it run on this host's service.
    #[serde(default = "default_computer_name")]
    pub computer_name: String,
    /// `control_socket`.
    #[serde(default = "default_control_socket")]
    pub control_socket: PathBuf,
    /// `[remote]`.
    #[serde(default)]
    pub remote: RemoteSettings,
    /// `[[static_names]]`: where remote calls to those names go.
    #[serde(default)]
    pub static_names: Vec<StaticName>,
    /// `[display]`.
    #[serde(default)]
    pub display: DisplaySettings,
}

/// What a client reads of `[remote]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RemoteSettings {
    /// `port`: the remote-call channel's port on the hosts we call.
    #[serde(default = "default_remote_port")]
    pub port: u16,
}

/// What a client reads of `[display]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DisplaySettings {
    /// `pending_hours`: how old a never-shown message the desktop agent
    /// still shows when it starts.
    #[serde(default = "default_pending_hours")]
    pub pending_hours: u64,
}

/// One `[[static_names]]` entry as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StaticName {
    /// The NetBIOS name (without suffix).
    pub name: String,
    /// `IP` or `IP:PORT`.
    pub address: String,
}

impl StaticName {
    /// Its address, with `default_port` when none is given.
    pub fn socket_addr(&self, default_port: u16) -> Option<SocketAddr> {
        socket_addr(&self.address, default_port)
    }
}

/// `IP:PORT`, or `IP` with `default_port` (a `[[static_names]]` address).
pub fn socket_addr(address: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(sa) = address.parse::<SocketAddrV4>() {
        return Some(SocketAddr::V4(sa));
    }
    address
        .parse::<Ipv4Addr>()
        .ok()
        .map(|ip| SocketAddr::V4(SocketAddrV4::new(ip, default_port)))
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            computer_name: default_computer_name(),
            control_socket: default_control_socket(),
            remote: RemoteSettings::default(),
            static_names: Vec::new(),
            display: DisplaySettings::default(),
        }
    }
}

impl Default for RemoteSettings {
    fn default() -> Self {
        Self {
            port: DEFAULT_REMOTE_PORT,
        }
    }
}

impl Default for DisplaySettings {
    fn default() -> Self {
        Self {
            pending_hours: DEFAULT_PENDING_HOURS,
        }
    }
}

impl ClientConfig {
    /// Reads `path` (None: the defaults).
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        Self::parse(&text).map_err(|e| ConfigError::Parse(path.to_owned(), e))
    }

    /// Parses the text of a configuration file.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

/// Default `computer_name`: the hostname's, see [`computer_name_from_hostname`].
pub fn default_computer_name() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "NETSEND".into());
    computer_name_from_hostname(&host)
}

/// The hostname's first label, upper-cased and cut to 15 bytes.
pub fn computer_name_from_hostname(host: &str) -> String {
    let label = host.split('.').next().unwrap_or("").to_uppercase();
    let mut name = String::new();
    for c in label.chars() {
        if name.len() + c.len_utf8() > 15 {
            break;
        }
        name.push(c);
    }
    if name.is_empty() {
        "NETSEND".into()
    } else {
        name
    }
}

fn default_control_socket() -> PathBuf {
    DEFAULT_CONTROL_SOCKET.into()
}
const fn default_remote_port() -> u16 {
    DEFAULT_REMOTE_PORT
}
const fn default_pending_hours() -> u64 {
    DEFAULT_PENDING_HOURS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_keys_and_ignores_the_others() {
        let config = ClientConfig::parse(
            r#"
            computer_name = "HOST"
            control_socket = "/tmp/c.sock"
            state_dir = "/var/lib/x"
            [remote]
            port = 4139
            listen = true
            [display]
            pending_hours = 0
            terminals = false
            [[static_names]]
            name = "PEER"
            address = "192.0.2.9:1139"
            [limits]
            max_connections = 3
            "#,
        )
        .unwrap();
        assert_eq!(config.computer_name, "HOST");
        assert_eq!(config.control_socket, Path::new("/tmp/c.sock"));
        assert_eq!(config.remote.port, 4139);
        assert_eq!(config.display.pending_hours, 0);
        assert_eq!(
            config.static_names[0].socket_addr(1),
            Some("192.0.2.9:1139".parse().unwrap())
        );
        let empty = ClientConfig::parse("").unwrap();
        assert_eq!(empty, ClientConfig::default());
        assert_eq!(empty.control_socket, Path::new(DEFAULT_CONTROL_SOCKET));
        // A key it reads must still be well-formed.
        assert!(ClientConfig::parse("[remote]\nport = \"x\"").is_err());
    }

    #[test]
    fn static_addresses_take_a_default_port() {
        assert_eq!(
            socket_addr("192.0.2.1", 139),
            Some("192.0.2.1:139".parse().unwrap())
        );
        assert_eq!(socket_addr("host.example", 139), None);
    }

    #[test]
    fn discovery_prefers_the_named_file() {
        let named = PathBuf::from("/tmp/named.toml");
        assert_eq!(discover(Some(named.clone())), Some(named));
    }

    #[test]
    fn computer_names_come_from_the_hostname() {
        assert_eq!(computer_name_from_hostname("web-01.example.org"), "WEB-01");
        assert_eq!(
            computer_name_from_hostname("averyveryverylonghostname"),
            "AVERYVERYVERYLO"
        );
        assert_eq!(computer_name_from_hostname(""), "NETSEND");
    }
}
