//! TCP driver of the session service: one task per connection feeding NBSS frames
//! to [`netsend_proto::session::ServerSession`] and writing its replies. A message
//! is committed to the inbox before its success reply is written. The read
//! waits until the session's own deadline ([`ServerSession::poll_timeout`])
//! or the idle timeout, whichever is first.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netsend_proto::session::{Action, ServerSession, SessionConfig};
use netsend_wire::nbss;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use netsend_proto::policy::DropReason;

use crate::service::Service;
use crate::store::{InboxError, Transport};
use netsend_proto::display::LogSafe;

/// Accepts connections until shutdown, at most `max_connections` at once.
pub(crate) async fn accept_loop(service: Arc<Service>, listener: TcpListener) {
    let permits = Arc::new(Semaphore::new(
        service.config.get().limits.max_connections.max(1),
    ));
    loop {
        let permit = tokio::select! {
            _ = service.shutdown.cancelled() => return,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let accepted = tokio::select! {
            _ = service.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Denied or over-connected sources are closed before a byte is read.
                let Some(slot) = service.admission.open_session(peer) else {
                    continue;
                };
                let task = service.clone();
                service.shutdown.spawn(async move {
                    let service = task;
                    serve(service, stream, peer).await;
                    drop(slot);
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %LogSafe(&e), "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection until the peer closes, an error, or idle timeout.
async fn serve(service: Arc<Service>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    // The limits in force when the connection opened hold for all of it.
    let limits = service.config.get();
    let config = SessionConfig {
        max_message_len: limits.limits.max_message_len,
        max_assembly_time: Duration::from_secs(limits.limits.assembly_timeout_secs.max(1)),
        ..SessionConfig::new(limits.code_page)
    };
    let mut session = ServerSession::new(config);
    let max_frame = session.max_frame_len();
    let idle = Duration::from_secs(limits.limits.session_idle_timeout_secs.max(1));
    let mut idle_at = Instant::now() + idle;
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    // Whether the session was called for a name at another site.
    let for_site = std::cell::Cell::new(false);
    loop {
        let frame_len = match nbss::check_frame(&buf, max_frame) {
            Ok(Some(n)) => n,
            Ok(None) => {
                if buf.len() >= max_frame + 4 {
                    return;
                }
                let mut chunk = [0u8; 4096];
                // The session's own deadline (an unfinished multi-block
                // message) comes before the idle timeout when it is earlier.
                // At a stop, no new frame is read; a message being
                // committed (below) finishes with its reply first.
                let expires = session.poll_timeout();
                let wake = expires.map_or(idle_at, |at| at.min(idle_at));
                let read = tokio::select! {
                    () = service.shutdown.cancelled() => return,
                    r = tokio::time::timeout_at(wake.into(), stream.read(&mut chunk)) => r,
                };
                match read {
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Ok(Ok(n)) => {
                        idle_at = Instant::now() + idle;
                        buf.extend_from_slice(&chunk[..n]);
                        continue;
                    }
                    Err(_) if Instant::now() < idle_at => {
                        if session.handle_timeout(Instant::now()) {
                            tracing::info!(%peer, "unfinished multi-block message discarded at its deadline ([limits] assembly_timeout_secs)");
                        }
                        continue;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "idle session closed");
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::info!(%peer, error = %LogSafe(&e), "dropping session: bad frame");
                return;
            }
        };
        let frame: Vec<u8> = buf.drain(..frame_len).collect();
        let arrived = Instant::now();
        let action = {
            let aliases = service.naming.aliases.lock().expect("alias table lock");
            // Our names first; a site gateway also takes sessions for the
            // names its directory places at other sites.
            session.handle_frame_at(arrived, &frame, &|name| {
                if aliases.accepts_called_name(name) {
                    return true;
                }
                let remote = service
                    .gateway
                    .as_ref()
                    .is_some_and(|g| g.directory.lookup(name).is_some());
                if remote {
                    for_site.set(true);
                }
                remote
            })
        };
        let reply = match action {
            Action::Nothing => continue,
            Action::Close => return,
            Action::Send(bytes) => bytes,
            Action::SendAndClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                return;
            }
            Action::Deliver {
                message,
                ack,
                refuse,
                tag,
            } => {
                // A name that must come verified cannot come by SMB.
                if service.admission.refuses_unverified(peer, &message.from)
                    || !service.admission.admit(peer, &message.from)
                {
                    // ERRSRV/ERRnoroom: the sender may try again later.
                    if stream.write_all(&refuse).await.is_err() {
                        return;
                    }
                    continue;
                }
                if let (true, Some(gateway), IpAddr::V4(sender)) =
                    (for_site.get(), &service.gateway, peer.ip())
                {
                    // For a name at another site: safe in the cluster or
                    // the outgoing queue before the success reply.
                    let reply = match gateway.accept(&message, sender).await {
                        Ok(()) => ack,
                        Err(e) => {
                            tracing::error!(error = %LogSafe(&e), %peer, "queue commit failed: refusing message for another site");
                            refuse
                        }
                    };
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
                    continue;
                }
                let mut new = service.naming.record(&message, peer, Transport::Session);
                new.claimed_by = service.admission.claimed_by(&message.from);
                // A tagged sender's repeat (it crashed before it learnt of
                // our reply) is acknowledged and not shown again.
                let stored = match tag {
                    Some(tag) => service.inbox.store_once(new, tag.key(peer.ip())).await,
                    None => service.inbox.store(new).await,
                };
                match stored {
                    Ok(stored) => {
                        tracing::info!(event = "receive", id = stored.id, from = %LogSafe(&message.from), to = %LogSafe(&message.to), %peer, transport = "session", "message stored");
                        service
                            .metrics
                            .received("session", arrived.elapsed().as_secs_f64());
                        service.delivery.deliver(stored);
                        ack
                    }
                    Err(InboxError::Repeat(id)) => {
                        tracing::info!(event = "receive", id, from = %LogSafe(&message.from), to = %LogSafe(&message.to), %peer, transport = "session", "repeat of a stored message (same delivery tag): acknowledged, not shown again");
                        ack
                    }
                    Err(InboxError::QuotaExceeded(_)) => {
                        service.admission.count_drop(
                            DropReason::InboxQuota,
                            peer,
                            &message.from,
                            Duration::ZERO,
                        );
                        refuse
                    }
                    Err(e) => {
                        tracing::error!(error = %LogSafe(&e), %peer, "inbox commit failed: refusing message");
                        refuse
                    }
                }
            }
        };
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}
