//! The disk watch: each `[alerter] disk` path's filesystem checked every
//! `interval_secs` with statvfs; `netsend_proto::alert::DiskWatch` decides
//! when a check is a crossing worth an alert (NT's text 3000 when low, and
//! one when it recovers).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use netsend_proto::alert::{disk_text, DiskWatch};
use netsend_proto::display::LogSafe;

use super::Alerter;
use crate::config::DiskWatchConfig;
use crate::shutdown::Shutdown;
use netsend_control::types::{AlertClass, AlertRequest};

/// The service name disk alerts carry.
const SERVICE: &str = "disk";

/// Bytes available to unprivileged users and the filesystem's size.
// `c_ulong` and `fsblkcnt_t` are 32 bits wide on 32-bit targets.
#[allow(clippy::useless_conversion)]
fn space(path: &PathBuf) -> nix::Result<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(path)?;
    let unit = u64::from(s.fragment_size());
    Ok((
        u64::from(s.blocks_available()).saturating_mul(unit),
        u64::from(s.blocks()).saturating_mul(unit),
    ))
}

/// Checks every path each interval until the service stops.
pub(crate) async fn watch(alerter: Arc<Alerter>, config: DiskWatchConfig, shutdown: Shutdown) {
    let mut watches = vec![DiskWatch::default(); config.paths.len()];
    let mut failing = vec![false; config.paths.len()];
    let mut tick = tokio::time::interval(Duration::from_secs(config.interval_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for (i, path) in config.paths.iter().enumerate() {
            let p = path.clone();
            let checked = tokio::task::spawn_blocking(move || space(&p)).await;
            let (available, total) = match checked {
                Ok(Ok(space)) => {
                    failing[i] = false;
                    space
                }
                Ok(Err(e)) => {
                    if !std::mem::replace(&mut failing[i], true) {
                        tracing::warn!(path = %LogSafe(&path.display()), error = %e, "disk watch cannot check this path");
                    }
                    continue;
                }
                Err(_) => continue,
            };
            if let Some(event) = watches[i].observe(available, total, config.min_free_percent) {
                let shown = path.display().to_string();
                alerter.submit(AlertRequest {
                    class: AlertClass::Admin,
                    service: SERVICE.into(),
                    text: disk_text(event, &shown, available, config.min_free_percent),
                    program: None,
                });
            }
        }
    }
}
