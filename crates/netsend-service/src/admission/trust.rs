//! Verified senders, the service's side: the trust file of pinned hosts
//! (`[trust] file`, `HOST KEY` lines), pinning on first contact, the names
//! verified peers use, and `require_verified_from`; the decisions are
//! [`netsend_proto::trust`]'s.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use netsend_control::remote::{parse_public_key, public_key_text};
use netsend_proto::trust::{self, Identity, Mark, Names};

/// Largest trust file read (a few thousand pinned hosts).
const MAX_FILE_LEN: u64 = 1 << 20;

/// Why the trust file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TrustError {
    /// It could not be read or written.
    #[error("trust file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A line is not `HOST KEY`.
    #[error("trust file {0}, line {1}: expected HOST KEY (a computer name and a base64 key)")]
    BadLine(PathBuf, usize),
}

/// The trust component: pins, the names verified peers use, and the names
/// that must come verified.
pub(crate) struct Trust {
    file: PathBuf,
    pin_new: bool,
    require: Vec<String>,
    /// Sender names verified peers use (pinned hosts' names included).
    names: Mutex<Names>,
    /// Held while the file is read and pinned to, so two first contacts do
    /// not both append.
    pins: Mutex<()>,
}

impl Trust {
    /// Trust as `[trust]` says, its file at `file`; the hosts already pinned
    /// there are noted as the owners of their own names.
    pub(crate) fn new(file: PathBuf, pin_new: bool, require: Vec<String>) -> Self {
        let mut names = Names::new();
        if let Ok(pins) = read_pins(&file) {
            for (host, _) in &pins {
                names.note(host, host);
            }
        }
        Self {
            file,
            pin_new,
            require,
            names: Mutex::new(names),
            pins: Mutex::default(),
        }
    }

    /// Which host `key` is, the caller claiming to be `claimed_host`;
    /// pins it on first contact (written before this returns).
    pub(crate) fn identify(
        &self,
        claimed_host: &str,
        key: &[u8; 32],
    ) -> Result<Identity, TrustError> {
        let _held = self.pins.lock().expect("trust file lock");
        let pins = read_pins(&self.file)?;
        let identity = trust::identify(&pins, claimed_host, key, self.pin_new);
        if let Identity::FirstContact(host) = &identity {
            let io = |e| TrustError::Io(self.file.clone(), e);
            if let Some(dir) = self.file.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o644)
                .open(&self.file)
                .map_err(io)?;
            writeln!(file, "{host} {}", public_key_text(key)).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        if let Identity::Known(host) | Identity::FirstContact(host) = &identity {
            self.names
                .lock()
                .expect("trust names lock")
                .note(host, host);
        }
        Ok(identity)
    }

    /// Notes that `host` used sender `name` verified (from the inbox, at
    /// start).
    pub(crate) fn note(&self, name: &str, host: &str) {
        self.names
            .lock()
            .expect("trust names lock")
            .note(name, host);
    }

    /// Whether an unverified message claiming `from` is to be refused.
    pub(crate) fn refuses_unverified(&self, from: &str) -> bool {
        trust::requires_verified(&self.require, from)
    }

    /// The mark of a message claiming `from`, delivered verified by
    /// `verified_host` or unverified (`None`).
    pub(crate) fn mark(&self, from: &str, verified_host: Option<&str>) -> Mark {
        self.names
            .lock()
            .expect("trust names lock")
            .mark(from, verified_host)
    }
}

/// The pins in `path` (none when it does not exist yet).
fn read_pins(path: &Path) -> Result<Vec<(String, [u8; 32])>, TrustError> {
    use std::io::Read as _;
    let io = |e| TrustError::Io(path.to_owned(), e);
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut text = String::new();
    file.take(MAX_FILE_LEN)
        .read_to_string(&mut text)
        .map_err(io)?;
    trust::parse_pins(&text, |k| parse_public_key(k).ok())
        .map_err(|line| TrustError::BadLine(path.to_owned(), line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_contact_pins_and_a_changed_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("trusted_hosts");
        let trust = Trust::new(file.clone(), true, vec!["ADMIN*".into()]);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(
            trust.identify("hosta", &a).unwrap(),
            Identity::FirstContact("HOSTA".into())
        );
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("HOSTA {}\n", public_key_text(&a))
        );
        assert_eq!(
            trust.identify("HOSTA", &a).unwrap(),
            Identity::Known("HOSTA".into())
        );
        assert_eq!(
            trust.identify("HOSTA", &b).unwrap(),
            Identity::KeyChanged {
                host: "HOSTA".into()
            }
        );
        // A pinned host's name, claimed unverified, is flagged.
        assert!(matches!(trust.mark("HostA", None), Mark::Claims { .. }));
        assert!(trust.refuses_unverified("admin"));
        assert!(!trust.refuses_unverified("bob"));
        // A restarted service knows the pinned names from the file.
        let again = Trust::new(file.clone(), false, Vec::new());
        assert!(matches!(again.mark("HOSTA", None), Mark::Claims { .. }));
        assert_eq!(again.identify("HOSTC", &b).unwrap(), Identity::Unknown);
        std::fs::write(&file, "HOSTA not-a-key\n").unwrap();
        assert!(matches!(
            again.identify("HOSTA", &a),
            Err(TrustError::BadLine(_, 1))
        ));
    }
}
