//! TCP driver of the remote-call channel: one task per caller, a Noise
//! handshake through [`Responder`], then one request, run only for keys this
//! host lists in `[remote] administrators` or `server_operators`. Callers not
//! yet known get [`MAX_CALLS_PER_SOURCE`] slots per address and
//! [`HANDSHAKE_TIMEOUT`] to show their key and request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use netsend_wire::status::NetApiStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::admission::slots::OpenTable;
use crate::remote::{Responder, Step};
use crate::service::Service;
use netsend_control::remote::{check_frame, public_key_text, KeyPair};
use netsend_control::{Request, Response};
use netsend_proto::display::{sanitize_name, LogSafe};
use netsend_proto::policy::DropReason;
use netsend_proto::trust::Identity;

use crate::store::{InboxError, Transport};

/// Longest sender or recipient name a verified delivery may carry.
const MAX_NAME_TEXT: usize = 256;

/// Most remote calls served at once.
const MAX_CALLS: usize = 16;
/// Most of them from one source address.
const MAX_CALLS_PER_SOURCE: usize = 4;
/// How long a caller has, from its connection, to finish the handshake and
/// send its request: until then nobody knows who it is.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole call (handshake, request, answer) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts remote calls until shutdown.
pub(crate) async fn accept_loop(
    service: Arc<Service>,
    listener: TcpListener,
    key: Arc<KeyPair>,
    principals: Arc<Vec<([u8; 32], &'static str)>>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CALLS));
    let sources = OpenTable::new(MAX_CALLS_PER_SOURCE);
    loop {
        let accepted = tokio::select! {
            _ = service.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        // `[filter]` applies to callers too: a denied (or not allowed)
        // network is closed before the handshake, counted as denied_address.
        if !service.admission.admit_address(peer) {
            continue;
        }
        let Some(source) = sources.take(peer.ip()) else {
            tracing::warn!(%peer, "remote call refused: {MAX_CALLS_PER_SOURCE} from this address already");
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "remote call refused: too many at once");
            continue;
        };
        let (task, key, principals) = (service.clone(), key.clone(), principals.clone());
        service.shutdown.spawn(async move {
            let service = task;
            let call = serve(&service, stream, peer, &key, &principals);
            // A stop ends a remote call where it stands (its caller sees
            // the connection close): nothing of ours is left half-written,
            // as the inbox commits whole transactions or none.
            tokio::select! {
                () = service.shutdown.cancelled() => {}
                r = tokio::time::timeout(CALL_TIMEOUT, call) => if r.is_err() {
                    tracing::info!(%peer, "remote call timed out");
                }
            }
            drop(slot);
            drop(source);
        });
    }
}

async fn serve(
    service: &Arc<Service>,
    mut stream: TcpStream,
    peer: SocketAddr,
    key: &KeyPair,
    principals: &[([u8; 32], &'static str)],
) {
    let Ok(mut responder) = Responder::new(key) else {
        return;
    };
    let handshake = read_request(&mut stream, &mut responder, peer);
    let request = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Some(request)) => request,
        Ok(None) => return,
        Err(_) => {
            tracing::info!(%peer, "remote call closed: no handshake and request within {HANDSHAKE_TIMEOUT:?}");
            return;
        }
    };
    let caller = responder.caller_key().copied().unwrap_or([0; 32]);
    let caller_text = public_key_text(&caller);
    let response = match (request, principals.iter().find(|(k, _)| *k == caller)) {
        // Any netsend host may deliver a message, with its service key: it
        // is what an incoming SMB message would do, verified.
        (
            Request::Deliver {
                host,
                from,
                to,
                text,
            },
            _,
        ) => deliver(service, peer, &caller, &host, Letter { from, to, text }).await,
        (request, Some((_, group))) => {
            tracing::info!(%peer, key = %caller_text, group, ?request, "remote call");
            let principal = format!("{group}:{peer}");
            let ctx = crate::control::Context::from_service(service);
            crate::control::dispatch_remote(&ctx, &principal, request).await
        }
        (_, None) => {
            tracing::warn!(%peer, key = %caller_text, "remote call refused: key not in administrators or server_operators");
            Response::Error {
                code: NetApiStatus::ERROR_ACCESS_DENIED.0,
                detail: format!(
                    "key {caller_text} is not in this host's [remote] administrators or server_operators"
                ),
            }
        }
    };
    if let Ok(bytes) = responder.seal(&response) {
        let _ = stream.write_all(&bytes).await;
    }
}

/// The message of a [`Request::Deliver`].
struct Letter {
    from: String,
    to: String,
    text: String,
}

/// Stores a [`Request::Deliver`] from the host holding `key`, as the
/// session driver stores an SMB message (the same admission, the same
/// store-then-answer), marked verified by the host `key` is pinned for. A
/// key that is not the one pinned for the host it claims is refused and
/// logged; so is an unknown key when first-contact pinning is off.
async fn deliver(
    service: &Service,
    peer: SocketAddr,
    key: &[u8; 32],
    host: &str,
    Letter { from, to, text }: Letter,
) -> Response {
    let refused = |status: NetApiStatus, detail: String| Response::Error {
        code: status.0,
        detail,
    };
    let max = service.config.get().limits.max_message_len;
    if text.len() > max || from.len() > MAX_NAME_TEXT || to.len() > MAX_NAME_TEXT {
        return refused(
            NetApiStatus::ERROR_INVALID_PARAMETER,
            format!("a message is at most {max} bytes and names {MAX_NAME_TEXT}"),
        );
    }
    let to_name = netsend_wire::NetbiosName::from_oem_lossy(to.as_bytes(), 0x03);
    let accepted = service
        .naming
        .aliases
        .lock()
        .expect("alias table lock")
        .accepts_called_name(&to_name);
    if !accepted {
        return refused(
            NetApiStatus::NERR_NAME_NOT_FOUND,
            format!("{} is not a name here", sanitize_name(&to)),
        );
    }
    if !service.admission.admit(peer, &from) {
        return refused(
            NetApiStatus::NERR_BAD_RECEIVE,
            "refused by this host's limits; try again later".into(),
        );
    }
    // Checked after the limits, so first contacts are pinned no faster
    // than messages are taken.
    let key_text = public_key_text(key);
    let verified = match service.admission.trust.identify(host, key) {
        Ok(Identity::Known(h)) => h,
        Ok(Identity::FirstContact(h)) => {
            tracing::warn!(%peer, host = %LogSafe(&h), key = %key_text, "verified sender: host pinned on first contact ([trust] pin_new)");
            h
        }
        Ok(Identity::KeyChanged { host }) => {
            tracing::error!(%peer, host = %LogSafe(&host), key = %key_text, "verified delivery refused: the host's key is not the one pinned in the trust file");
            return refused(
                NetApiStatus::ERROR_ACCESS_DENIED,
                format!("{} is pinned here with another key", sanitize_name(&host)),
            );
        }
        Ok(Identity::Unknown) => {
            tracing::warn!(%peer, host = %LogSafe(&host), key = %key_text, "verified delivery refused: key not pinned ([trust] pin_new = false)");
            return refused(
                NetApiStatus::ERROR_ACCESS_DENIED,
                "this host's key is not pinned here".into(),
            );
        }
        Err(e) => {
            tracing::error!(%peer, error = %LogSafe(&e), "verified delivery refused: trust file unusable");
            return refused(
                NetApiStatus::NERR_NETWORK_ERROR,
                "the trust file is unusable".into(),
            );
        }
    };
    let message = netsend_proto::message::Message {
        from: from.clone(),
        to: to.clone(),
        text,
        multi_block: true,
    };
    let mut new = service.naming.record(&message, peer, Transport::Remote);
    service.admission.trust.mark(&from, Some(&verified));
    new.verified_host = Some(verified.clone());
    match service.inbox.store(new).await {
        Ok(stored) => {
            tracing::info!(event = "receive", id = stored.id, from = %LogSafe(&from), to = %LogSafe(&to), %peer, transport = "remote", verified_host = %LogSafe(&verified), "message stored");
            service.delivery.deliver(stored);
            Response::Ok
        }
        Err(e) => {
            if matches!(e, InboxError::QuotaExceeded(_)) {
                service
                    .admission
                    .count_drop(DropReason::InboxQuota, peer, &from, Duration::ZERO);
            } else {
                tracing::error!(error = %LogSafe(&e), %peer, "inbox commit failed: refusing message");
            }
            refused(NetApiStatus::NERR_BAD_RECEIVE, "not stored".into())
        }
    }
}

/// Runs the handshake and reads the caller's request; `None` when the
/// caller hung up or broke the protocol.
async fn read_request(
    stream: &mut TcpStream,
    responder: &mut Responder,
    peer: SocketAddr,
) -> Option<Request> {
    let mut buf = Vec::with_capacity(256);
    loop {
        let len = loop {
            if let Some(n) = check_frame(&buf) {
                break n;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let frame: Vec<u8> = buf.drain(..len).collect();
        match responder.handle(&frame[2..]) {
            Ok(Step::Send(bytes)) => stream.write_all(&bytes).await.ok()?,
            Ok(Step::Read) => {}
            Ok(Step::Request(request)) => return Some(*request),
            Err(e) => {
                tracing::info!(%peer, error = %LogSafe(&e), "remote call: bad handshake or message");
                return None;
            }
        }
    }
}
