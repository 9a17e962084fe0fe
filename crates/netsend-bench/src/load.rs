//! The load generator: directed messages exactly as `smbclient -M` sends them
//! (session request, 0xD5, 0xD7 blocks, 0xD6; a new TCP session per message)
//! through the same sans-IO client netsend uses, and unicast name queries.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netsend_proto::sender::{ClientSession, SendOptions};
use netsend_wire::nbns::Packet;
use netsend_wire::{nbss, NetbiosName};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Arguments of `load`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// The receiver's address.
    #[arg(long)]
    target: Ipv4Addr,
    /// The receiver's message alias.
    #[arg(long)]
    name: String,
    /// Messages to send.
    #[arg(long)]
    count: usize,
    /// Sessions in flight at once.
    #[arg(long)]
    concurrency: usize,
    /// Text bytes per message.
    #[arg(long, default_value_t = 20)]
    size: usize,
    /// The sender name the messages claim.
    #[arg(long, default_value = "bench")]
    from: String,
    /// Stop after this many seconds even if `count` is not reached (0: no limit).
    #[arg(long, default_value_t = 0)]
    duration_secs: u64,
    /// Start each text with its number and the Unix milliseconds it was sent
    /// at (`N MS `), so the receiver's inbox gives end-to-end latencies.
    #[arg(long)]
    stamp: bool,
}

/// Arguments of `queries`.
#[derive(Debug, clap::Args)]
pub(crate) struct QueryArgs {
    /// The name server's address.
    #[arg(long)]
    target: Ipv4Addr,
    /// The name to ask for (suffix 0x03).
    #[arg(long)]
    name: String,
    /// Queries to send, one after another.
    #[arg(long)]
    count: usize,
}

/// What one load run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Measured {
    /// Operations that succeeded.
    pub ok: usize,
    /// Operations that failed.
    pub errors: usize,
    /// Successful operations per second.
    pub per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

fn summarize(mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) -> Measured {
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Measured {
        ok: latencies.len(),
        errors,
        per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    }
}

async fn send_one(
    target: SocketAddr,
    called: NetbiosName,
    (from, name): (&str, &str),
    text: &str,
) -> Result<(), String> {
    let calling = NetbiosName::new("BENCHCLI", 0).map_err(|e| e.to_string())?;
    let mut session = ClientSession::new(called, calling, from, name, text, SendOptions::default());
    let mut stream = TcpStream::connect(target)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(128);
    loop {
        while let Some(frame) = session.poll_transmit() {
            stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        }
        if session.is_done() {
            return Ok(());
        }
        let len = loop {
            if let Some(n) = nbss::check_frame(&buf, 1024).map_err(|e| e.to_string())? {
                break n;
            }
            let mut chunk = [0u8; 512];
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed".into());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let frame: Vec<u8> = buf.drain(..len).collect();
        session.handle_frame(&frame).map_err(|e| format!("{e:?}"))?;
    }
}

/// `text` behind the message's number and the Unix milliseconds now, cut to
/// the length `text` had (never shorter than the stamp).
fn stamped(seq: usize, text: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut out = format!("{seq} {ms} {text}");
    out.truncate(text.len().max(out.len() - text.len()));
    out
}

/// The number and send time (Unix ms) a [`stamped`] text carries.
pub(crate) fn stamp_of(text: &str) -> Option<(usize, i64)> {
    let mut words = text.split(' ');
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

/// Runs `load` and prints one JSON [`Measured`].
pub(crate) fn run_load(args: &LoadArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let called = NetbiosName::new(&args.name, 3).map_err(|e| e.to_string())?;
    let target = SocketAddr::V4(SocketAddrV4::new(args.target, 139));
    let text: String = (0..args.size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let measured = rt.block_on(async {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Instant::now();
        let deadline =
            (args.duration_secs > 0).then(|| start + Duration::from_secs(args.duration_secs));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..args.concurrency.max(1) {
            let (next, name, from, text, count, stamp) = (
                next.clone(),
                args.name.clone(),
                args.from.clone(),
                text.clone(),
                args.count,
                args.stamp,
            );
            workers.spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                loop {
                    let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seq >= count || deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let text = if stamp {
                        stamped(seq, &text)
                    } else {
                        text.clone()
                    };
                    let t = Instant::now();
                    match tokio::time::timeout(
                        Duration::from_secs(10),
                        send_one(target, called, (&from, &name), &text),
                    )
                    .await
                    {
                        Ok(Ok(())) => latencies.push(t.elapsed()),
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            });
        }
        let mut all = Vec::new();
        let mut errors = 0;
        while let Some(Ok((l, e))) = workers.join_next().await {
            all.extend(l);
            errors += e;
        }
        summarize(all, errors, start.elapsed())
    });
    println!(
        "{}",
        serde_json::to_string(&measured).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Runs `queries` and prints one JSON [`Measured`].
pub(crate) fn run_queries(args: &QueryArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let name = NetbiosName::new(&args.name, 3).map_err(|e| e.to_string())?;
    let measured = rt.block_on(async {
        let socket = UdpSocket::bind("0.0.0.0:0")
            .await
            .map_err(|e| e.to_string())?;
        let target = SocketAddrV4::new(args.target, 137);
        let mut latencies = Vec::with_capacity(args.count);
        let mut errors = 0;
        let mut buf = [0u8; 1500];
        let start = Instant::now();
        for i in 0..args.count {
            let trn = i as u16;
            let query = Packet::name_query(trn, name, false)
                .to_bytes()
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            socket
                .send_to(&query, target)
                .await
                .map_err(|e| e.to_string())?;
            // Skip stale or duplicate answers to earlier queries.
            let answered = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    let Ok((n, _)) = socket.recv_from(&mut buf).await else {
                        return false;
                    };
                    if buf[..n].get(..2) == Some(&trn.to_be_bytes()[..]) {
                        return true;
                    }
                }
            })
            .await
            .unwrap_or(false);
            if answered {
                latencies.push(t.elapsed());
            } else {
                errors += 1;
            }
        }
        Ok::<_, String>(summarize(latencies, errors, start.elapsed()))
    })?;
    println!(
        "{}",
        serde_json::to_string(&measured).map_err(|e| e.to_string())?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{stamp_of, stamped};

    #[test]
    fn a_stamped_text_keeps_its_length_and_gives_back_its_number() {
        let text = "x".repeat(40);
        let s = stamped(17, &text);
        assert_eq!(s.len(), 40);
        let (seq, ms) = stamp_of(&s).unwrap();
        assert_eq!(seq, 17);
        assert!(ms > 1_700_000_000_000, "{s}");
        // Shorter than the stamp: the stamp stays whole.
        assert_eq!(stamp_of(&stamped(3, "ab")).map(|s| s.0), Some(3));
        assert_eq!(stamp_of("no stamp"), None);
    }
}
