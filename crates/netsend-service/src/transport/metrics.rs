//! The metrics endpoint (`[metrics] listen`): HTTP/1.x `GET /metrics`
//! answered with [`crate::metrics::Metrics`] as OpenMetrics text, one
//! request per connection. At most [`MAX_CLIENTS`] at once (more are
//! closed unanswered), a head of at most `netsend_wire::http::MAX_HEAD_LEN`
//! bytes, read within [`REQUEST_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use netsend_proto::display::LogSafe;
use netsend_wire::http::{HttpError, RequestHead};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::service::Service;

/// Scrapes answered at once.
const MAX_CLIENTS: usize = 8;

/// How long a client has to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the endpoint until shutdown.
pub(crate) async fn serve(service: Arc<Service>, listener: TcpListener) {
    let permits = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let accepted = tokio::select! {
            () = service.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::debug!(%peer, "metrics: {MAX_CLIENTS} scrapes at once; one closed");
                    continue;
                };
                let task = service.clone();
                service.shutdown.spawn(async move {
                    answer(&task, stream).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %LogSafe(&e), "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// What a request asks for.
enum Asked {
    /// `GET /metrics` (`HEAD`: without the body).
    Metrics { body: bool },
    /// Another path.
    NotFound,
    /// Another method.
    BadMethod,
    /// A head that does not parse, or too long.
    Bad(HttpError),
}

/// Reads a request head from `stream` (bounded) and says what it asks;
/// `None` when the client closed first.
async fn read_request(stream: &mut TcpStream) -> Option<Asked> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        match RequestHead::parse(&buf) {
            Ok(Some((head, _))) => {
                return Some(match (head.method, head.path()) {
                    ("GET" | "HEAD", "/metrics") => Asked::Metrics {
                        body: head.method == "GET",
                    },
                    ("GET" | "HEAD", _) => Asked::NotFound,
                    _ => Asked::BadMethod,
                });
            }
            Ok(None) => {}
            Err(e) => return Some(Asked::Bad(e)),
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One HTTP response, closing the connection.
fn response(status: &str, content_type: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Answers one connection's request.
async fn answer(service: &Service, mut stream: TcpStream) {
    let Ok(Some(asked)) = tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await
    else {
        return;
    };
    let text = "text/plain; charset=utf-8";
    let reply = match asked {
        Asked::Metrics { body } => {
            let queued = service.inbox.queue_depth().await.unwrap_or(0);
            let wins = service
                .wins
                .as_ref()
                .map(crate::wins::WinsServer::table_sizes)
                .unwrap_or_default();
            service
                .metrics
                .set_state(queued, &service.naming.state_words(), wins);
            response(
                "200 OK",
                crate::metrics::CONTENT_TYPE,
                &service.metrics.encode(),
                body,
            )
        }
        Asked::NotFound => response("404 Not Found", text, "only /metrics is served\n", true),
        Asked::BadMethod => response("405 Method Not Allowed", text, "GET /metrics\n", true),
        Asked::Bad(HttpError::TooLong) => response(
            "431 Request Header Fields Too Large",
            text,
            "request head too long\n",
            true,
        ),
        Asked::Bad(HttpError::Malformed) => {
            response("400 Bad Request", text, "bad request\n", true)
        }
    };
    let _ = stream.write_all(&reply).await;
    let _ = stream.shutdown().await;
}
