//! The verified path of a directed message: a [`Request::Deliver`] over the
//! remote channel to the recipient's host, with this service's key, so the
//! recipient can mark it `verified HOST`.
//!
//! It is tried first when the recipient's host answers on its remote port;
//! it falls back to SMB only when the recipient cannot have stored the
//! message: no connection, a failed handshake, or an answer that it does
//! not take deliveries (ERROR_NOT_SUPPORTED, an older netsend). Once the
//! request is sent, any failure (no answer, a refusal) is the send's
//! failure: a second copy by SMB could duplicate the message. A host whose
//! key is not the one pinned in `known_servers` fails the send (never a
//! silent fallback past a changed key).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netsend_control::remote::{Channel, KeyPair, KnownServers, RemoteError};
use netsend_control::{Request, Response};
use netsend_wire::status::NetApiStatus;

use super::send::{Deadline, SendFailure};
use crate::config::Config;

/// How long the verified path may take to connect and finish its
/// handshake; a host that does not answer on its remote port by then gets
/// the message by SMB.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// What sending verified needs: the service's key, the pinned keys of the
/// hosts it delivered to, and their remote port.
pub(crate) struct VerifiedSend {
    key: Arc<KeyPair>,
    known: KnownServers,
    port: u16,
    host: String,
}

/// How the verified path went.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The recipient stored the message.
    Delivered,
    /// The recipient cannot have stored it (why): SMB may carry it.
    Unavailable(String),
}

impl VerifiedSend {
    /// The verified path with the service's `key` (pins in
    /// `known_servers` in `state_dir`).
    pub(crate) fn new(key: KeyPair, config: &Config) -> Self {
        Self {
            key: Arc::new(key),
            known: KnownServers::new(config.state_dir.join("known_servers")),
            port: config.remote.port,
            host: config.computer_name.to_ascii_uppercase(),
        }
    }

    /// Delivers `text` from `from` to `to` at the host of `session` (its
    /// session address) over the remote channel, by `deadline`.
    pub(crate) async fn deliver(
        &self,
        session: SocketAddr,
        from: &str,
        to: &str,
        text: &str,
        deadline: Deadline,
    ) -> Result<Outcome, SendFailure> {
        let address = SocketAddr::new(session.ip(), self.port);
        let request = Request::Deliver {
            host: self.host.clone(),
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
        };
        let (key, known) = (self.key.clone(), self.known.clone());
        let until = deadline.instant();
        let call = tokio::task::spawn_blocking(move || {
            let handshake_by = until.min(Instant::now() + HANDSHAKE_TIMEOUT);
            let channel =
                match Channel::open(address, &address.to_string(), &key, &known, handshake_by) {
                    Ok(channel) => channel,
                    Err(e @ RemoteError::ServerKeyChanged { .. }) => return Err(e),
                    Err(e) => return Ok(Err(e.to_string())),
                };
            Ok(Ok(channel.with_deadline(until).call(&request)))
        });
        let network = |e: String| SendFailure::Network(address, e);
        let outcome = call.await.map_err(|e| network(e.to_string()))?;
        let answer = match outcome {
            Err(changed) => return Err(SendFailure::AccessDenied(changed.to_string())),
            Ok(Err(unavailable)) => return Ok(Outcome::Unavailable(unavailable)),
            Ok(Ok(answer)) => answer,
        };
        match answer {
            Ok(Response::Ok) => Ok(Outcome::Delivered),
            Ok(Response::Error { code, detail })
                if NetApiStatus(code) == NetApiStatus::ERROR_NOT_SUPPORTED =>
            {
                Ok(Outcome::Unavailable(detail))
            }
            Ok(Response::Error { code, detail }) => Err(SendFailure::Refused(
                address,
                netsend_proto::display::sanitize_name(&detail),
                NetApiStatus(code),
            )),
            Ok(other) => Err(network(format!("unexpected answer {other:?}"))),
            // Sent, but no answer: it may be stored, so no second copy.
            Err(e) => Err(network(format!(
                "verified delivery sent, but not answered ({e}); not sent again by SMB, as it may have arrived"
            ))),
        }
    }
}
