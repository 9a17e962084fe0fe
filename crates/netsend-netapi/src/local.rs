//! Where a call goes: the local messenger service, reached over its control
//! socket (the service knows the caller from the socket's peer credentials),
//! or another host's service over the authenticated remote-call channel (the
//! target checks the caller's key against its administrators). Either way the
//! library needs no permission logic of its own.

use std::path::PathBuf;
use std::time::Duration;

use netsend_control::config::{self, ClientConfig};
use netsend_control::{client, remote, ClientError, Request, Response};
use netsend_wire::status::NetApiStatus;

/// Overrides the control socket path.
const SOCKET_ENV: &str = "NETSEND_CONTROL_SOCKET";
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
        config: Box<ClientConfig>,
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

/// The configuration ([`config::discover`]: `$NETSEND_CONFIG`, else
/// `/etc/netsend/netsend.toml` if it exists, else the built-in defaults; its
/// `control_socket` can be overridden by `$NETSEND_CONTROL_SOCKET`). An
/// unreadable configuration file is `ERROR_INVALID_PARAMETER`, as for the
/// `netsend` command.
fn config() -> Result<ClientConfig, NetApiStatus> {
    ClientConfig::load(config::discover(None).as_deref())
        .map_err(|_| NetApiStatus::ERROR_INVALID_PARAMETER)
}

impl LocalService {
    /// Sends one request. Any failure, a service error included, comes back
    /// as its NERR/Win32 code ([`ClientError::status`]).
    pub(crate) fn call(&self, request: &Request) -> Result<Response, NetApiStatus> {
        self.exchange(request)
            .and_then(Response::into_result)
            .map_err(|e| e.status())
    }

    /// Runs `request` on the service, here or there.
    fn exchange(&self, request: &Request) -> Result<Response, ClientError> {
        match self {
            Self::Here { socket } => client::call_blocking(socket, request, TIMEOUT),
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
                Ok(remote::call_server(config, server, request, TIMEOUT)?)
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
