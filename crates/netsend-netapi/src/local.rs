//! Where a call goes: the local messenger service, reached over its control
//! socket (the service knows the caller from the socket's peer credentials),
//! or another host's service over the authenticated remote-call channel (the
//! target checks the caller's key against its administrators). Either way the
//! library needs no permission logic of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use netsend_service::config::Config;
use netsend_service::control::{self, ClientError, Request, Response};
use netsend_service::remote::{self, RemoteError};
use netsend_wire::status::NetApiStatus;

/// Overrides the control socket path.
const SOCKET_ENV: &str = "NETSEND_CONTROL_SOCKET";
/// Names the configuration file whose `control_socket` is used.
const CONFIG_ENV: &str = "NETSEND_CONFIG";
/// The configuration file read when [`CONFIG_ENV`] is not set, if it exists.
const SYSTEM_CONFIG: &str = "/etc/netsend/netsend.toml";
/// How long one read or write on the control socket may wait.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The messenger service a call runs on.
#[derive(Debug)]
pub(crate) enum LocalService {
    /// This host's, through its control socket.
    Here {
        /// The control socket.
        socket: PathBuf,
    },
    /// Another host's, through the remote-call channel.
    There {
        /// The configuration (remote port, static names).
        config: Box<Config>,
        /// The server as the caller named it.
        server: String,
    },
}

/// Dispatches on the `servername` argument (already read, without `\\`): `None`
/// or this host's computer name (any case) is the local service; any other
/// name or address is that host's service, reached over the remote-call
/// channel with the caller's key.
pub(crate) fn server(servername: Option<&str>) -> Result<LocalService, NetApiStatus> {
    let config = config()?;
    let local = LocalService::Here {
        socket: std::env::var_os(SOCKET_ENV)
            .filter(|s| !s.is_empty())
            .map_or_else(|| config.control_socket.clone(), PathBuf::from),
    };
    match servername {
        None => Ok(local),
        Some(name) if name.eq_ignore_ascii_case(&config.computer_name) => Ok(local),
        Some(name) => Ok(LocalService::There {
            config: Box::new(config),
            server: name.to_owned(),
        }),
    }
}

/// The configuration: `$NETSEND_CONFIG`, else `/etc/netsend/netsend.toml` if it
/// exists, else the built-in defaults (its `control_socket` can be overridden
/// by `$NETSEND_CONTROL_SOCKET`). An unreadable configuration file is
/// `ERROR_INVALID_PARAMETER`, as for the `netsend` command.
fn config() -> Result<Config, NetApiStatus> {
    let path = std::env::var_os(CONFIG_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            Path::new(SYSTEM_CONFIG)
                .exists()
                .then(|| SYSTEM_CONFIG.into())
        });
    Config::load(path.as_deref()).map_err(|_| NetApiStatus::ERROR_INVALID_PARAMETER)
}

impl LocalService {
    /// Sends one request. A service error comes back as its NERR/Win32 code; no
    /// local listener is `NERR_MsgNotStarted`; an unreachable remote host is
    /// `NERR_NetworkError`, and one whose key changed `ERROR_ACCESS_DENIED`.
    pub(crate) fn call(&self, request: &Request) -> Result<Response, NetApiStatus> {
        let socket = match self {
            Self::Here { socket } => socket,
            Self::There { config, server } => {
                // The target knows the caller only by key: name the sender here.
                let named;
                let request = match request {
                    Request::Send {
                        to,
                        from: None,
                        text,
                    } => {
                        named = Request::Send {
                            to: to.clone(),
                            from: Some(remote::login_name()),
                            text: text.clone(),
                        };
                        &named
                    }
                    other => other,
                };
                return match remote::call_server(config, server, request, TIMEOUT) {
                    Ok(Response::Error { code, .. }) => Err(NetApiStatus(code)),
                    Ok(response) => Ok(response),
                    Err(RemoteError::ServerKeyChanged { .. }) => {
                        Err(NetApiStatus::ERROR_ACCESS_DENIED)
                    }
                    Err(_) => Err(NetApiStatus::NERR_NETWORK_ERROR),
                };
            }
        };
        match control::call_blocking(socket, request, TIMEOUT) {
            Ok(Response::Error { code, .. }) => Err(NetApiStatus(code)),
            Ok(response) => Ok(response),
            Err(ClientError::NotRunning(_)) => Err(NetApiStatus::NERR_MSG_NOT_STARTED),
            Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(NetApiStatus::ERROR_ACCESS_DENIED)
            }
            Err(ClientError::Io(_) | ClientError::Protocol(_)) => {
                Err(NetApiStatus::NERR_NETWORK_ERROR)
            }
        }
    }

    /// The names of every message alias, computer name first.
    pub(crate) fn alias_names(&self) -> Result<Vec<String>, NetApiStatus> {
        match self.call(&Request::Names)? {
            Response::Names { names, .. } => Ok(names.into_iter().map(|n| n.alias.name).collect()),
            _ => Err(NetApiStatus::NERR_INTERNAL_ERROR),
        }
    }
}
