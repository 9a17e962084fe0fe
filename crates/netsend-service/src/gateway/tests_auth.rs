//! The gateway's credentials and TLS options against a real nats-server
//! that asks for them (skipped with a message when nats-server or openssl
//! is missing, failed instead under `NETSEND_REQUIRE_INTEROP=1`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::config::GatewayConfig;
use crate::shutdown::Shutdown;

use super::link::Link;
use super::tests::{config, connected, installed, NatsServer};

/// Runs `link` until it publishes once, then stops it (bounded).
async fn publishes(link: Link) {
    let shutdown = Shutdown::new();
    shutdown.spawn(link.clone().run(shutdown.clone()));
    connected(&link).await;
    assert!(link.connection().connected);
    let ack = link
        .publish("netsend.msg.SOUTH".into(), "NORTH-1".into(), "hi".into())
        .await
        .unwrap();
    assert!(!ack.duplicate);
    stop(shutdown).await;
}

/// Runs `link` until its connection state carries an error, checks that
/// it never connected and that the error says `reason` (any case), and
/// stops it (bounded).
async fn refused(link: Link, reason: &str) {
    let shutdown = Shutdown::new();
    shutdown.spawn(link.clone().run(shutdown.clone()));
    let mut error = None;
    for _ in 0..200 {
        let state = link.connection();
        assert!(!state.connected, "connected without the right credentials");
        if let Some(e) = state.last_error {
            error = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!link.connected());
    stop(shutdown).await;
    let error = error.expect("the connection state carries no error");
    assert!(
        error
            .to_ascii_lowercase()
            .contains(&reason.to_ascii_lowercase()),
        "{error}"
    );
}

/// Stops a link; the stop is not held up by its retries.
async fn stop(shutdown: Shutdown) {
    shutdown.request();
    tokio::time::timeout(Duration::from_secs(10), shutdown.finish())
        .await
        .expect("the link stops at the stop");
}

fn authorization(block: &'static str) -> impl FnOnce(&Path) -> String {
    move |_| format!("authorization {{ {block} }}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_authenticates_with_user_and_password() {
    let Some(server) =
        NatsServer::start_with(authorization("user: north, password: \"s3cret pw\""))
    else {
        return;
    };
    let with = |user: Option<&str>, password: Option<&str>| {
        let mut c = config("north", &server.url);
        c.user = user.map(str::to_owned);
        c.password = password.map(str::to_owned);
        Link::new(c)
    };
    publishes(with(Some("north"), Some("s3cret pw"))).await;
    for link in [with(Some("north"), Some("wrong")), with(None, None)] {
        refused(link, "authorization").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_authenticates_with_a_token() {
    let Some(server) = NatsServer::start_with(authorization("token: \"t0ken-north\"")) else {
        return;
    };
    let with = |token: Option<&str>| {
        let mut c = config("north", &server.url);
        c.token = token.map(str::to_owned);
        Link::new(c)
    };
    publishes(with(Some("t0ken-north"))).await;
    for link in [with(Some("t0ken-south")), with(None)] {
        refused(link, "authorization").await;
    }
}

/// openssl's options for a new, unencrypted P-256 key.
const NEW_KEY: &str = "-nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1";

/// A throw-away CA with a server certificate for 127.0.0.1 and a client
/// certificate, made with openssl in a scratch directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Makes one, or None (with the reason printed) when openssl is missing.
    fn make() -> Option<Self> {
        if !installed("openssl", "version") {
            return None;
        }
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.openssl(&format!(
            "req -x509 -new {NEW_KEY} -subj /CN=netsend-test-CA -days 2 \
             -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.pem"
        ));
        pki.leaf(
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        pki.leaf(
            "client",
            "subjectAltName=DNS:north.netsend.invalid\nextendedKeyUsage=clientAuth\n",
        );
        Some(pki)
    }

    /// A key and a certificate `NAME.key`/`NAME.pem` signed by the CA.
    fn leaf(&self, name: &str, extensions: &str) {
        let ext = format!("{name}.ext");
        std::fs::write(self.path(&ext), extensions).unwrap();
        self.openssl(&format!(
            "req -new {NEW_KEY} -subj /CN={name} -keyout {name}.key -out {name}.csr"
        ));
        self.openssl(&format!(
            "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile {ext} -out {name}.pem"
        ));
    }

    /// Runs openssl in the directory with the whitespace-separated `args`.
    fn openssl(&self, args: &str) {
        let out = Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's `tls` block; `verify` asks clients for a certificate.
    fn server_block(&self, verify: bool) -> String {
        format!(
            "tls {{ cert_file: {:?}, key_file: {:?}, ca_file: {:?}, verify: {verify} }}",
            self.path("server.pem"),
            self.path("server.key"),
            self.path("ca.pem"),
        )
    }
}

/// A TLS-only server, a `tls://` link configuration for it, and the PKI.
fn tls_server(verify: bool) -> Option<(NatsServer, GatewayConfig, Pki)> {
    let pki = Pki::make()?;
    let block = pki.server_block(verify);
    let server = NatsServer::start_with(|_| block)?;
    let url = server.url.replacen("nats://", "tls://", 1);
    let mut c = config("north", &url);
    c.tls_required = true;
    Some((server, c, pki))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_checks_the_servers_certificate_against_tls_ca() {
    let Some((_server, c, pki)) = tls_server(false) else {
        return;
    };
    let mut trusted = c.clone();
    trusted.tls_ca = Some(pki.path("ca.pem"));
    publishes(Link::new(trusted)).await;
    // The server's CA unknown: no connection, and a certificate error.
    refused(Link::new(c), "invalid peer certificate: UnknownIssuer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_shows_its_client_certificate_to_a_server_that_verifies() {
    let Some((_server, c, pki)) = tls_server(true) else {
        return;
    };
    let mut mutual = c.clone();
    mutual.tls_ca = Some(pki.path("ca.pem"));
    mutual.tls_cert = Some(pki.path("client.pem"));
    mutual.tls_key = Some(pki.path("client.key"));
    publishes(Link::new(mutual.clone())).await;
    // Without the client certificate the server hangs up on the handshake.
    let mut anonymous = mutual;
    anonymous.tls_cert = None;
    anonymous.tls_key = None;
    refused(Link::new(anonymous), "BadCertificate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_required_refuses_a_server_without_tls() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let mut c = config("north", &server.url);
    c.tls_required = true;
    // The client starts TLS and reads the server's plain INFO as a
    // corrupt TLS record: refused, never sent in the clear.
    refused(Link::new(c), "corrupt message").await;
}

/// A NATS JWT of `claims` (with `iss`, `sub`, `iat`, `jti` filled in)
/// for `subject`, signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, mut claims: serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    claims["iss"] = issuer.public_key().into();
    claims["sub"] = subject.into();
    claims["iat"] = now.into();
    claims["jti"] = format!("netsend-test-{subject}").into();
    let signed = format!(
        "{}.{}",
        b64.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#),
        b64.encode(claims.to_string())
    );
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64.encode(signature))
}

/// An operator, an account with JetStream and its user: the server's
/// operator block for the scratch directory, and the user's `.creds` text.
fn operator_setup() -> (impl FnOnce(&Path) -> String, String) {
    let (operator, system, account, user) = (
        nkeys::KeyPair::new_operator(),
        nkeys::KeyPair::new_account(),
        nkeys::KeyPair::new_account(),
        nkeys::KeyPair::new_user(),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        serde_json::json!({"name": "netsend-test", "nats": {
            "system_account": system.public_key(), "type": "operator", "version": 2,
        }}),
    );
    // JetStream needs a system account for its internal subscriptions.
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        serde_json::json!({"name": "SYS", "nats": {"type": "account", "version": 2}}),
    );
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        serde_json::json!({"name": "SITES", "nats": {
            "limits": unlimited, "type": "account", "version": 2,
        }}),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        serde_json::json!({"name": "north", "nats": {
            "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
            "type": "user", "version": 2,
        }}),
    );
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    );
    let (account_key, system_key) = (account.public_key(), system.public_key());
    let block = move |dir: &Path| {
        let path = dir.join("operator.jwt");
        std::fs::write(&path, operator_jwt).unwrap();
        format!(
            "operator: {path:?}\nsystem_account: {system_key}\nresolver: MEMORY\n\
             resolver_preload: {{ {account_key}: \"{account_jwt}\", {system_key}: \"{system_jwt}\" }}"
        )
    };
    (block, creds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_authenticates_with_a_creds_file() {
    let (block, creds) = operator_setup();
    let Some(server) = NatsServer::start_with(block) else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let good = files.path().join("north.creds");
    std::fs::write(&good, &creds).unwrap();
    let mut c = config("north", &server.url);
    c.credentials = Some(good);
    publishes(Link::new(c.clone())).await;
    // A user the account did not sign (the same JWT, another seed): refused.
    let stranger = files.path().join("stranger.creds");
    let seed = creds
        .lines()
        .find(|l| l.starts_with("SU"))
        .unwrap()
        .to_owned();
    let other = nkeys::KeyPair::new_user().seed().unwrap();
    std::fs::write(&stranger, creds.replace(&seed, &other)).unwrap();
    c.credentials = Some(stranger);
    refused(Link::new(c.clone()), "authorization").await;
    // No credentials at all: refused as well.
    c.credentials = None;
    refused(Link::new(c), "authorization").await;
}
