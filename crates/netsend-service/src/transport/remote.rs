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
use netsend_proto::display::LogSafe;

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
    let response = match principals.iter().find(|(k, _)| *k == caller) {
        Some((_, group)) => {
            tracing::info!(%peer, key = %caller_text, group, ?request, "remote call");
            let principal = format!("{group}:{peer}");
            let ctx = crate::control::Context::from_service(service);
            crate::control::dispatch_remote(&ctx, &principal, request).await
        }
        None => {
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
