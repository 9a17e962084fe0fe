//! The control socket: accepts local clients, learns who each is from the
//! socket's peer credentials, caps connections in all and per user, and
//! frames one JSON request per line (at most [`MAX_REQUEST_LEN`] bytes),
//! handing each to [`control::dispatch`].

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::admission::slots::OpenTable;
use crate::control::{self, Caller, Context, ControlError, Request, Response, MAX_REQUEST_LEN};
use crate::service::Service;

/// Most control clients connected at once.
const MAX_CONTROL_CONNECTIONS: usize = 512;
/// Most of them one user other than root may hold.
const MAX_CONTROL_CONNECTIONS_PER_USER: usize = 64;
/// How long a client may take to send its next request before it is
/// disconnected (a waiting `InboxList` is not idle: it is being answered).
const CONTROL_IDLE: Duration = Duration::from_secs(30);

/// Accepts control clients until shutdown.
pub(crate) async fn serve(service: Arc<Service>, listener: UnixListener) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONTROL_CONNECTIONS));
    let per_user = OpenTable::new(MAX_CONTROL_CONNECTIONS_PER_USER);
    loop {
        let stream = tokio::select! {
            () = service.shutdown.cancelled() => return,
            a = listener.accept() => match a { Ok((s, _)) => s, Err(_) => continue },
        };
        // Local clients (a follower waits here up to a minute) cannot pile up
        // without bound: beyond the cap a new connection is closed at once.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "control socket: {MAX_CONTROL_CONNECTIONS} clients connected; one refused"
            );
            continue;
        };
        let (client_service, per_user) = (service.clone(), per_user.clone());
        service.shutdown.spawn(async move {
            let _slot = slot;
            let Ok(cred) = stream.peer_cred() else {
                return;
            };
            let caller = Caller::local(cred.uid(), cred.gid());
            // Root has no per-user cap.
            let _user_slot = if caller.is_root() {
                None
            } else {
                let Some(slot) = per_user.take(caller.uid) else {
                    tracing::warn!(
                        uid = caller.uid,
                        "control socket: {MAX_CONTROL_CONNECTIONS_PER_USER} clients of one user connected; one refused"
                    );
                    return;
                };
                Some(slot)
            };
            serve_client(&client_service, &caller, stream).await;
        });
    }
}

/// Answers `caller`'s requests on `stream`, one per line, until they close
/// it, stay idle for [`CONTROL_IDLE`], or send an over-long line.
async fn serve_client(service: &Arc<Service>, caller: &Caller, stream: UnixStream) {
    let ctx = Context::from_service(service);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        let mut bounded = (&mut reader).take(MAX_REQUEST_LEN as u64);
        // At a stop, no new request is read; one being answered finishes
        // first.
        let read = tokio::select! {
            () = service.shutdown.cancelled() => return,
            r = tokio::time::timeout(CONTROL_IDLE, bounded.read_line(&mut line)) => r,
        };
        match read {
            Ok(Ok(0) | Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
        let over_long = !line.ends_with('\n') && line.len() >= MAX_REQUEST_LEN;
        let response = match serde_json::from_str::<Request>(&line) {
            _ if over_long => ControlError::TooLong.into(),
            Ok(request) => control::dispatch(&ctx, caller, request).await,
            Err(e) => Response::from(ControlError::BadRequest(e)),
        };
        let mut out = serde_json::to_string(&response).unwrap_or_else(|_| "{}".into());
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() || over_long {
            return;
        }
    }
}
