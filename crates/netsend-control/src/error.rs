//! [`ClientError`]: every way a client call fails, and the one mapping from
//! it to the NERR/Win32 code the CLI prints and `libnetapi32` returns.

use std::path::PathBuf;

use netsend_wire::status::NetApiStatus;

/// Why a call to a messenger service failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the control socket.
    #[error("no messenger service answers on {}", .0.display())]
    NotRunning(PathBuf),
    /// The control socket failed mid-call.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The service answered something unreadable.
    #[error("unreadable answer from the service: {0}")]
    Protocol(String),
    /// A call over the remote-call channel failed before the target answered.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    /// The service answered with a NERR/Win32 code ([`crate::Response::Error`]).
    #[error("{detail}")]
    Refused {
        /// The code.
        status: NetApiStatus,
        /// The service's detail, for people.
        detail: String,
    },
}

impl ClientError {
    /// The NERR/Win32 code for this failure: the service's own code when it
    /// refused; `NERR_MsgNotStarted` when nothing listens;
    /// `ERROR_ACCESS_DENIED` when the control socket may not be opened or a
    /// remote server's key is not the one on record; `NERR_NetworkError` for
    /// any other failed or unreadable exchange.
    pub fn status(&self) -> NetApiStatus {
        use crate::remote::RemoteError;
        match self {
            Self::Refused { status, .. } => *status,
            Self::NotRunning(_) => NetApiStatus::NERR_MSG_NOT_STARTED,
            Self::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                NetApiStatus::ERROR_ACCESS_DENIED
            }
            Self::Remote(RemoteError::ServerKeyChanged { .. }) => NetApiStatus::ERROR_ACCESS_DENIED,
            Self::Io(_) | Self::Protocol(_) | Self::Remote(_) => NetApiStatus::NERR_NETWORK_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::RemoteError;

    #[test]
    fn each_failure_has_its_code() {
        let io = |kind: std::io::ErrorKind| ClientError::Io(kind.into());
        let changed = RemoteError::ServerKeyChanged {
            server: "192.0.2.7:2139".into(),
            got: "a".into(),
            expected: "b".into(),
            file: "known_servers".into(),
        };
        for (error, status) in [
            (
                ClientError::NotRunning("/run/netsend/control.sock".into()),
                NetApiStatus::NERR_MSG_NOT_STARTED,
            ),
            (
                io(std::io::ErrorKind::PermissionDenied),
                NetApiStatus::ERROR_ACCESS_DENIED,
            ),
            (
                io(std::io::ErrorKind::BrokenPipe),
                NetApiStatus::NERR_NETWORK_ERROR,
            ),
            (
                ClientError::Protocol("connection closed".into()),
                NetApiStatus::NERR_NETWORK_ERROR,
            ),
            (
                ClientError::Remote(changed),
                NetApiStatus::ERROR_ACCESS_DENIED,
            ),
            (
                // A remote host's socket refusing us is the network's failure,
                // not a local permission.
                ClientError::Remote(RemoteError::Io(std::io::ErrorKind::PermissionDenied.into())),
                NetApiStatus::NERR_NETWORK_ERROR,
            ),
            (
                ClientError::Refused {
                    status: NetApiStatus::NERR_NAME_NOT_FOUND,
                    detail: "no such name".into(),
                },
                NetApiStatus::NERR_NAME_NOT_FOUND,
            ),
        ] {
            assert_eq!(error.status(), status, "{error:?}");
        }
    }
}
