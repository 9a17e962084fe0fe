//! Where a call goes: the local messenger service, reached over its control
//! socket. The service knows the caller from the socket's peer credentials, so
//! the library needs no permission logic of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use netsend_service::config::Config;
use netsend_service::control::{self, ClientError, Request, Response};
use netsend_wire::status::NetApiStatus;

/// Overrides the control socket path.
const SOCKET_ENV: &str = "NETSEND_CONTROL_SOCKET";
/// Names the configuration file whose `control_socket` is used.
const CONFIG_ENV: &str = "NETSEND_CONFIG";
/// The configuration file read when [`CONFIG_ENV`] is not set, if it exists.
const SYSTEM_CONFIG: &str = "/etc/netsend/netsend.toml";
/// How long one read or write on the control socket may wait.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The messenger service on this host.
#[derive(Debug)]
pub(crate) struct LocalService {
    socket: PathBuf,
}

/// Dispatches on the `servername` argument (already read, without `\\`): `None`
/// or this host's computer name (any case) is the local service. Any other
/// server is `ERROR_NOT_SUPPORTED` until remote calls exist.
pub(crate) fn server(servername: Option<&str>) -> Result<LocalService, NetApiStatus> {
    let local = LocalService {
        socket: control_socket()?,
    };
    match servername {
        None => Ok(local),
        Some(name) if name.to_uppercase() == local.computer_name()?.to_uppercase() => Ok(local),
        Some(_) => Err(NetApiStatus::ERROR_NOT_SUPPORTED),
    }
}

/// The control socket: `$NETSEND_CONTROL_SOCKET`, else `control_socket` from
/// `$NETSEND_CONFIG` or `/etc/netsend/netsend.toml`, else the built-in default.
/// An unreadable configuration file is `ERROR_INVALID_PARAMETER`, as for the
/// `netsend` command.
fn control_socket() -> Result<PathBuf, NetApiStatus> {
    if let Some(socket) = std::env::var_os(SOCKET_ENV).filter(|s| !s.is_empty()) {
        return Ok(socket.into());
    }
    let path = std::env::var_os(CONFIG_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            Path::new(SYSTEM_CONFIG)
                .exists()
                .then(|| SYSTEM_CONFIG.into())
        });
    Config::load(path.as_deref())
        .map(|config| config.control_socket)
        .map_err(|_| NetApiStatus::ERROR_INVALID_PARAMETER)
}

impl LocalService {
    /// Sends one request. A service error comes back as its NERR/Win32 code; no
    /// listener is `NERR_MsgNotStarted`.
    pub(crate) fn call(&self, request: &Request) -> Result<Response, NetApiStatus> {
        match control::call_blocking(&self.socket, request, TIMEOUT) {
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

    /// The service's computer name.
    fn computer_name(&self) -> Result<String, NetApiStatus> {
        match self.call(&Request::Status)? {
            Response::Status(status) => Ok(status.computer_name),
            _ => Err(NetApiStatus::NERR_INTERNAL_ERROR),
        }
    }

    /// The names of every message alias, computer name first.
    pub(crate) fn alias_names(&self) -> Result<Vec<String>, NetApiStatus> {
        match self.call(&Request::Names)? {
            Response::Names { names } => Ok(names.into_iter().map(|n| n.alias.name).collect()),
            _ => Err(NetApiStatus::NERR_INTERNAL_ERROR),
        }
    }
}
