//! The control socket: accepts local clients, learns who each is from the
//! socket's peer credentials, caps connections in all and per user, and
//! frames one JSON request per line (at most [`MAX_REQUEST_LEN`] bytes),
//! handing each to [`control::dispatch`].

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::admission::slots::OpenTable;
use crate::control::{self, Caller, Context, ControlError};
use crate::service::Service;
use netsend_control::protocol::MAX_REQUEST_LEN;
use netsend_control::{Request, Response};

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
            let _counted = client_service.metrics.control_client();
            let ctx = Context::from_service(&client_service);
            serve_client(&ctx, &caller, stream).await;
        });
    }
}

/// Answers `caller`'s requests on `stream`, one per line, until they close
/// it, stay idle for [`CONTROL_IDLE`], or send an over-long line.
async fn serve_client(ctx: &Context<'_>, caller: &Caller, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        let mut bounded = (&mut reader).take(MAX_REQUEST_LEN as u64);
        // At a stop, no new request is read; one being answered finishes
        // first.
        let read = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            r = tokio::time::timeout(CONTROL_IDLE, bounded.read_line(&mut line)) => r,
        };
        match read {
            Ok(Ok(0) | Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
        let over_long = !line.ends_with('\n') && line.len() >= MAX_REQUEST_LEN;
        let response = match serde_json::from_str::<Request>(&line) {
            _ if over_long => ControlError::TooLong.into(),
            Ok(request) => control::dispatch(ctx, caller, request).await,
            Err(e) => Response::from(ControlError::BadRequest(e)),
        };
        let mut out = serde_json::to_string(&response).unwrap_or_else(|_| "{}".into());
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() || over_long {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixStream;

    use super::serve_client;
    use crate::control::tests::{alice, config, Components};
    use netsend_control::protocol::MAX_REQUEST_LEN;
    use netsend_control::Response;

    /// The answer on one line, parsed.
    fn answer(line: Option<String>) -> Response {
        serde_json::from_str(&line.expect("an answer line")).expect("a response")
    }

    #[tokio::test]
    async fn each_line_gets_one_answer_and_an_over_long_one_closes_the_connection() {
        let components = Components::new(config());
        let ctx = components.context();
        let caller = alice();
        let (client, server) = UnixStream::pair().unwrap();
        let client_side = async move {
            let (read, mut write) = client.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"{\"op\":\"status\"}\n").await.unwrap();
            let status = answer(lines.next_line().await.unwrap());
            assert!(matches!(status, Response::Status(_)), "{status:?}");

            write.write_all(b"{\"op\":\"nonsense\"}\n").await.unwrap();
            let Response::Error { code, detail } = answer(lines.next_line().await.unwrap()) else {
                panic!("an unknown request is answered with an error");
            };
            assert_eq!(code, 87);
            assert!(detail.starts_with("bad request: "), "{detail}");

            // A line that never ends is cut at the limit, answered, and the
            // connection closed.
            write.write_all(&vec![b' '; MAX_REQUEST_LEN]).await.unwrap();
            let Response::Error { code, detail } = answer(lines.next_line().await.unwrap()) else {
                panic!("an over-long request is answered with an error");
            };
            assert_eq!(code, 87);
            assert_eq!(
                detail,
                format!("request longer than {MAX_REQUEST_LEN} bytes")
            );
            assert!(lines.next_line().await.unwrap().is_none(), "still open");
        };
        tokio::join!(serve_client(&ctx, &caller, server), client_side);
    }

    #[tokio::test]
    async fn a_stop_ends_a_connection_waiting_for_its_next_request() {
        let components = Components::new(config());
        let ctx = components.context();
        let caller = alice();
        let (client, server) = UnixStream::pair().unwrap();
        let stop = async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            components.shutdown.request();
        };
        let started = std::time::Instant::now();
        tokio::join!(serve_client(&ctx, &caller, server), stop);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        drop(client);
    }
}
