//! Calls run on another host's messenger service (`servername`, `--server`):
//! one control [`Request`] over a Noise channel between netsend hosts.
//!
//! The channel is `Noise_XX_25519_ChaChaPoly_BLAKE2s` over TCP: both sides
//! prove a static X25519 key, and everything after the handshake is encrypted.
//! The target runs the request only when the caller's key is listed in its
//! `[remote] administrators` or `server_operators`; everyone else gets
//! ERROR_ACCESS_DENIED and nothing is done. The caller checks the target's key
//! against its known servers (recorded on first use, like ssh's known_hosts).
//!
//! Frames are a 2-byte big-endian length and that many bytes (one Noise
//! message, at most 65535 bytes).
//!
//! This is the caller's side, the keys and the framing; the service's side
//! (its sans-IO responder) is in `netsend-service` and uses the same pieces.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::config::ClientConfig;
use crate::protocol::{Request, Response};

/// The Noise protocol both sides speak.
pub const NOISE_PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// Largest Noise message.
pub const MAX_FRAME: usize = 65535;
/// Room Noise adds to an encrypted payload (the AEAD tag).
const TAG_LEN: usize = 16;
/// Longest answer (JSON) one frame carries.
pub const MAX_ANSWER: usize = MAX_FRAME - TAG_LEN;

/// Why a remote call failed before the target could answer.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The connection failed or timed out.
    #[error("remote channel: {0}")]
    Io(#[from] std::io::Error),
    /// The Noise handshake or a decryption failed.
    #[error("remote channel: noise: {0}")]
    Noise(#[from] snow::Error),
    /// The peer sent something that is not our protocol.
    #[error("remote channel: {0}")]
    Protocol(String),
    /// The target's key is not the one recorded for it.
    #[error("the key of {server} is {got}, but {expected} is recorded in {file}; if the server's key really changed, remove that line")]
    ServerKeyChanged {
        /// The server as addressed.
        server: String,
        /// The key it showed.
        got: String,
        /// The key on record.
        expected: String,
        /// The known-servers file.
        file: String,
    },
    /// A key file is unreadable or malformed.
    #[error("key file {0}: {1}")]
    Key(PathBuf, String),
}

/// A static X25519 key pair.
#[derive(Clone)]
pub struct KeyPair {
    /// The private key (never logged).
    private: [u8; 32],
    /// The public key, shown as base64 to be listed on targets.
    pub public: [u8; 32],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", public_key_text(&self.public))
    }
}

/// A public key as written in configuration files: standard base64.
pub fn public_key_text(key: &[u8; 32]) -> String {
    BASE64.encode(key)
}

/// A text that is not a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a key: expected base64 of 32 bytes")]
pub struct BadKey;

/// Parses a base64 public key.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], BadKey> {
    let bytes = BASE64.decode(text.trim()).map_err(|_| BadKey)?;
    bytes.try_into().map_err(|_| BadKey)
}

fn builder() -> snow::Builder<'static> {
    snow::Builder::new(NOISE_PATTERN.parse().expect("valid noise pattern"))
}

impl KeyPair {
    /// A fresh random key pair.
    pub fn generate() -> Result<Self, RemoteError> {
        let k = builder().generate_keypair()?;
        let private = k
            .private
            .try_into()
            .map_err(|_| RemoteError::Protocol("noise generated a key of the wrong size".into()))?;
        let public = k
            .public
            .try_into()
            .map_err(|_| RemoteError::Protocol("noise generated a key of the wrong size".into()))?;
        Ok(Self { private, public })
    }

    /// The caller's side of a handshake with this key.
    pub fn initiator(&self) -> Result<snow::HandshakeState, RemoteError> {
        Ok(builder()
            .local_private_key(&self.private)
            .build_initiator()?)
    }

    /// The service's side of a handshake with this key.
    pub fn responder(&self) -> Result<snow::HandshakeState, RemoteError> {
        Ok(builder()
            .local_private_key(&self.private)
            .build_responder()?)
    }

    /// Reads the private key at `path` (base64 of 32 bytes), creating it with
    /// mode 0600 when it does not exist. The file is opened without following
    /// a symbolic link and must be a regular file; an error names the file
    /// but never quotes what it holds (it may be any file the path reaches).
    pub fn load_or_create(path: &Path) -> Result<Self, RemoteError> {
        let bad = |e: String| RemoteError::Key(path.to_owned(), e);
        match read_key_text(path) {
            Ok(text) => {
                let private = parse_public_key(&text).map_err(|e| bad(e.to_string()))?;
                let public = x25519_public(&private)?;
                Ok(Self { private, public })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pair = Self::generate()?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
                }
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| bad(e.to_string()))?;
                writeln!(file, "{}", BASE64.encode(pair.private))
                    .map_err(|e| bad(e.to_string()))?;
                Ok(pair)
            }
            Err(e) => Err(bad(e.to_string())),
        }
    }
}

/// The text of a key file: opened with `O_NOFOLLOW`, a regular file, at most
/// 1 KiB read.
fn read_key_text(path: &Path) -> std::io::Result<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    file.take(1024)
        .read_to_string(&mut text)
        .map_err(|_| std::io::Error::other("not a key file (unreadable text)"))?;
    Ok(text)
}

/// The public key of an X25519 private key.
fn x25519_public(private: &[u8; 32]) -> Result<[u8; 32], RemoteError> {
    let secret = x25519_dalek::StaticSecret::from(*private);
    Ok(x25519_dalek::PublicKey::from(&secret).to_bytes())
}

/// Prefixes one Noise message with its length.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + message.len());
    out.extend_from_slice(&(message.len().min(MAX_FRAME) as u16).to_be_bytes());
    out.extend_from_slice(&message[..message.len().min(MAX_FRAME)]);
    out
}

/// The length of the first complete frame in `buf` (header included), or
/// `None` if more bytes are needed.
pub fn check_frame(buf: &[u8]) -> Option<usize> {
    let len = usize::from(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]));
    (buf.len() >= 2 + len).then_some(2 + len)
}

/// Reads one frame, all of it by `deadline`: a server that sends it a byte
/// at a time cannot hold the caller longer.
fn read_frame(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, RemoteError> {
    let mut head = [0u8; 2];
    read_by(stream, &mut head, deadline)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(head))];
    read_by(stream, &mut body, deadline)?;
    Ok(body)
}

/// Fills `buf` from `stream`, or fails once `deadline` has passed.
fn read_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the server did not answer in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Servers whose keys we have seen: a text file of `SERVER KEY` lines.
#[derive(Debug, Clone)]
pub struct KnownServers {
    path: PathBuf,
}

impl KnownServers {
    /// The known-servers file at `path` (created on first use).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Records `key` as the key of `server`, replacing any recorded one: an
    /// administrator pins a key they got by a trusted way before the first
    /// call, or after a server's key really changed.
    pub fn pin(&self, server: &str, key: &[u8; 32]) -> Result<(), RemoteError> {
        let bad = |e: std::io::Error| RemoteError::Key(self.path.clone(), e.to_string());
        let existing = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(bad(e)),
        };
        let mut text: String = existing
            .lines()
            .filter(|line| line.split_whitespace().next() != Some(server))
            .map(|line| format!("{line}\n"))
            .collect();
        text.push_str(&format!("{server} {}\n", public_key_text(key)));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(bad)?;
        }
        // Written whole to a new file, then renamed: a crash leaves the old
        // file or the new one, never half of one.
        let fresh = self.path.with_extension("new");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&fresh)
            .map_err(bad)?;
        file.write_all(text.as_bytes()).map_err(bad)?;
        file.sync_all().map_err(bad)?;
        std::fs::rename(&fresh, &self.path).map_err(bad)
    }

    /// Where the records are kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts `key` for `server` if it is the recorded one, or records it if
    /// none is recorded yet.
    pub fn check_or_record(&self, server: &str, key: &[u8; 32]) -> Result<(), RemoteError> {
        let text = public_key_text(key);
        let existing = std::fs::read_to_string(&self.path).unwrap_or_default();
        for line in existing.lines() {
            let mut fields = line.split_whitespace();
            if let (Some(name), Some(recorded)) = (fields.next(), fields.next()) {
                if name == server {
                    return if recorded == text {
                        Ok(())
                    } else {
                        Err(RemoteError::ServerKeyChanged {
                            server: server.to_owned(),
                            got: text,
                            expected: recorded.to_owned(),
                            file: self.path.display().to_string(),
                        })
                    };
                }
            }
        }
        let bad = |e: std::io::Error| RemoteError::Key(self.path.clone(), e.to_string());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(bad)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(bad)?;
        writeln!(file, "{server} {text}").map_err(bad)?;
        Ok(())
    }
}

/// Runs `request` on the messenger service at `address`, authenticated by
/// `key`, checking the server's key against `known` (recorded under `server`).
/// The whole call, answer included, must be done within `timeout`.
pub fn call(
    address: SocketAddr,
    server: &str,
    key: &KeyPair,
    known: &KnownServers,
    request: &Request,
    timeout: Duration,
) -> Result<Response, RemoteError> {
    let deadline = Instant::now() + timeout;
    Channel::open(address, server, key, known, deadline)?.call(request)
}

/// A remote channel whose handshake is done: the server's key is checked,
/// and nothing has been asked yet (a caller that fails before this point
/// knows the server has done nothing).
pub struct Channel {
    stream: TcpStream,
    noise: snow::TransportState,
    deadline: Instant,
}

impl Channel {
    /// Connects to `address` and runs the handshake with `key`, checking the
    /// server's key against `known` (recorded under `server`), by `deadline`
    /// (which also bounds the call that follows).
    pub fn open(
        address: SocketAddr,
        server: &str,
        key: &KeyPair,
        known: &KnownServers,
        deadline: Instant,
    ) -> Result<Self, RemoteError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into());
        }
        let mut stream = TcpStream::connect_timeout(&address, timeout)?;
        stream.set_write_timeout(Some(timeout))?;
        let mut noise = key.initiator()?;
        let mut buf = vec![0u8; MAX_FRAME];
        let mut payload = vec![0u8; MAX_FRAME];
        let n = noise.write_message(&[], &mut buf)?;
        stream.write_all(&frame(&buf[..n]))?;
        let reply = read_frame(&mut stream, deadline)?;
        noise.read_message(&reply, &mut payload)?;
        let server_key: [u8; 32] = noise
            .get_remote_static()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| RemoteError::Protocol("the server showed no key".into()))?;
        known.check_or_record(server, &server_key)?;
        let n = noise.write_message(&[], &mut buf)?;
        stream.write_all(&frame(&buf[..n]))?;
        Ok(Self {
            stream,
            noise: noise.into_transport_mode()?,
            deadline,
        })
    }

    /// The channel with another deadline for the call that follows (a
    /// handshake given less time than the whole call).
    pub fn with_deadline(self, deadline: Instant) -> Self {
        Self { deadline, ..self }
    }

    /// Sends `request` and reads the answer, by the channel's deadline.
    pub fn call(mut self, request: &Request) -> Result<Response, RemoteError> {
        let mut buf = vec![0u8; MAX_FRAME];
        let mut payload = vec![0u8; MAX_FRAME];
        let json = serde_json::to_vec(request).map_err(|e| RemoteError::Protocol(e.to_string()))?;
        if json.len() + TAG_LEN > MAX_FRAME {
            return Err(RemoteError::Protocol("request too large".into()));
        }
        let n = self.noise.write_message(&json, &mut buf)?;
        self.stream.write_all(&frame(&buf[..n]))?;
        let answer = read_frame(&mut self.stream, self.deadline)?;
        let n = self.noise.read_message(&answer, &mut payload)?;
        serde_json::from_slice(&payload[..n]).map_err(|e| RemoteError::Protocol(e.to_string()))
    }
}

/// The calling user's login name: the sender of a remote send, since the
/// target knows the caller only by key.
pub fn login_name() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| format!("uid{uid}"), |u| u.name)
}

/// Overrides the caller's key file.
pub const KEY_FILE_ENV: &str = "NETSEND_KEY_FILE";

/// The caller's key file: `$NETSEND_KEY_FILE`, else `remote.key` in
/// `$XDG_CONFIG_HOME/netsend` or `~/.config/netsend`. Its directory also holds
/// `known_servers`.
pub fn user_key_file() -> Result<PathBuf, RemoteError> {
    if let Some(path) = std::env::var_os(KEY_FILE_ENV).filter(|p| !p.is_empty()) {
        return Ok(path.into());
    }
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            RemoteError::Key(
                "~/.config".into(),
                "neither XDG_CONFIG_HOME nor HOME is set".into(),
            )
        })?;
    Ok(dir.join("netsend").join("remote.key"))
}

/// Where `server` (`\\NAME`, `NAME`, an IPv4 address, or `ADDRESS:PORT`) is:
/// an address or `[[static_names]]` entry, else the system resolver; the port
/// is `[remote] port` unless given.
pub fn server_address(config: &ClientConfig, server: &str) -> Result<SocketAddr, RemoteError> {
    let server = server.trim_start_matches('\\');
    if let Ok(addr) = server.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = config.remote.port;
    if let Ok(ip) = server.parse::<std::net::Ipv4Addr>() {
        return Ok(SocketAddr::from((ip, port)));
    }
    if let Some(entry) = config
        .static_names
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(server))
    {
        if let Some(addr) = entry.socket_addr(port) {
            return Ok(SocketAddr::from((addr.ip(), port)));
        }
    }
    use std::net::ToSocketAddrs as _;
    (server, port)
        .to_socket_addrs()?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| {
            RemoteError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("cannot resolve server {server:?}"),
            ))
        })
}

/// The caller's known servers: `known_servers` beside their key file.
pub fn user_known_servers() -> Result<KnownServers, RemoteError> {
    Ok(KnownServers::new(
        user_key_file()?.with_file_name("known_servers"),
    ))
}

/// Pins `key` as the key of `server` in the caller's known servers, under
/// the address calls to `server` go to; returns that address.
pub fn trust_server(
    config: &ClientConfig,
    server: &str,
    key: &[u8; 32],
) -> Result<SocketAddr, RemoteError> {
    let address = server_address(config, server)?;
    user_known_servers()?.pin(&address.to_string(), key)?;
    Ok(address)
}

/// Runs `request` on `server`'s messenger service with the caller's own key
/// (created on first use), pinning the server's key in `known_servers`.
pub fn call_server(
    config: &ClientConfig,
    server: &str,
    request: &Request,
    timeout: Duration,
) -> Result<Response, RemoteError> {
    let key = KeyPair::load_or_create(&user_key_file()?)?;
    let known = user_known_servers()?;
    let address = server_address(config, server)?;
    call(
        address,
        &address.to_string(),
        &key,
        &known,
        request,
        timeout,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_need_their_whole_length() {
        let f = frame(b"hello");
        assert_eq!(f[..2], [0, 5]);
        assert_eq!(check_frame(&f), Some(7));
        for cut in 0..f.len() {
            assert_eq!(check_frame(&f[..cut]), None);
        }
    }

    #[test]
    fn keys_round_trip_through_files_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = KeyPair::load_or_create(&path).unwrap();
        let b = KeyPair::load_or_create(&path).unwrap();
        assert_eq!(a.public, b.public);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = public_key_text(&a.public);
        assert_eq!(parse_public_key(&text).unwrap(), a.public);
        assert!(parse_public_key("not base64!").is_err());
        assert!(parse_public_key("AAAA").is_err());
    }

    #[test]
    fn known_servers_record_then_pin() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownServers::new(dir.path().join("known"));
        let (a, b) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        known.check_or_record("192.0.2.7", &a.public).unwrap();
        known.check_or_record("192.0.2.7", &a.public).unwrap();
        known.check_or_record("192.0.2.8", &b.public).unwrap();
        assert!(matches!(
            known.check_or_record("192.0.2.7", &b.public),
            Err(RemoteError::ServerKeyChanged { .. })
        ));
    }

    #[test]
    fn servers_are_found_by_address_or_static_name_on_the_remote_port() {
        let config = ClientConfig::parse(
            "[remote]\nport = 4139\n[[static_names]]\nname = \"PEER\"\naddress = \"192.0.2.9:1139\"\n",
        )
        .unwrap();
        let at = |server: &str| server_address(&config, server).unwrap();
        assert_eq!(at("192.0.2.7:5000"), "192.0.2.7:5000".parse().unwrap());
        assert_eq!(at("\\\\192.0.2.7"), "192.0.2.7:4139".parse().unwrap());
        // A static name's session port is not the remote port.
        assert_eq!(at("\\\\peer"), "192.0.2.9:4139".parse().unwrap());
    }
}
