//! TCP driver of the remote-call channel: one task per caller, a Noise
//! handshake through [`Responder`], then one request, run only for keys this
//! host lists in `[remote] administrators` or `server_operators`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use netsend_wire::status::NetApiStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::control::Response;
use crate::remote::{check_frame, public_key_text, KeyPair, Responder, Step};
use crate::service::Service;
use netsend_proto::display::LogSafe;

/// Most remote calls served at once.
const MAX_CALLS: usize = 16;
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
    let mut stop = service.stop_signal();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "remote call refused: too many at once");
            continue;
        };
        let (service, key, principals) = (service.clone(), key.clone(), principals.clone());
        tokio::spawn(async move {
            let call = serve(&service, stream, peer, &key, &principals);
            if tokio::time::timeout(CALL_TIMEOUT, call).await.is_err() {
                tracing::info!(%peer, "remote call timed out");
            }
            drop(slot);
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
    let mut buf = Vec::with_capacity(256);
    loop {
        let len = loop {
            if let Some(n) = check_frame(&buf) {
                break n;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let frame: Vec<u8> = buf.drain(..len).collect();
        let step = match responder.handle(&frame[2..]) {
            Ok(step) => step,
            Err(e) => {
                tracing::info!(%peer, error = %LogSafe(&e), "remote call: bad handshake or message");
                return;
            }
        };
        let request = match step {
            Step::Send(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
                continue;
            }
            Step::Read => continue,
            Step::Request(request) => *request,
        };
        let caller = responder.caller_key().copied().unwrap_or([0; 32]);
        let caller_text = public_key_text(&caller);
        let response = match principals.iter().find(|(k, _)| *k == caller) {
            Some((_, group)) => {
                tracing::info!(%peer, key = %caller_text, group, ?request, "remote call");
                let principal = format!("{group}:{peer}");
                crate::control_server::handle_remote(service, &principal, request).await
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
        return;
    }
}
