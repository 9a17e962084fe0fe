//! The service's side of the remote-call channel ([`netsend_control::remote`]):
//! a sans-IO [`Responder`] that runs the Noise handshake with the service's
//! key and decrypts one request.

use netsend_control::remote::{frame, KeyPair, RemoteError, MAX_ANSWER, MAX_FRAME};
use netsend_control::{Request, Response};
use netsend_wire::status::NetApiStatus;

/// The side of the channel that runs requests: the handshake as responder
/// with the service's key, then one request. Sans IO: bytes in, bytes out.
pub struct Responder {
    noise: Option<snow::HandshakeState>,
    transport: Option<snow::TransportState>,
    caller_key: Option<[u8; 32]>,
}

/// What the responder wants next.
#[derive(Debug)]
pub enum Step {
    /// Write these bytes (a framed message) and read the next frame.
    Send(Vec<u8>),
    /// Read the next frame.
    Read,
    /// The request, decrypted; answer it with [`Responder::seal`].
    Request(Box<Request>),
}

impl Responder {
    /// A responder using the service's `key`.
    pub fn new(key: &KeyPair) -> Result<Self, RemoteError> {
        Ok(Self {
            noise: Some(key.responder()?),
            transport: None,
            caller_key: None,
        })
    }

    /// The caller's static key, known once the handshake is done.
    pub const fn caller_key(&self) -> Option<&[u8; 32]> {
        self.caller_key.as_ref()
    }

    /// Handles one frame's body from the caller.
    pub fn handle(&mut self, message: &[u8]) -> Result<Step, RemoteError> {
        let mut payload = vec![0u8; MAX_FRAME];
        if let Some(transport) = self.transport.as_mut() {
            let n = transport.read_message(message, &mut payload)?;
            let request = serde_json::from_slice(&payload[..n])
                .map_err(|e| RemoteError::Protocol(format!("bad request: {e}")))?;
            return Ok(Step::Request(Box::new(request)));
        }
        let mut noise = self
            .noise
            .take()
            .ok_or_else(|| RemoteError::Protocol("handshake already failed".into()))?;
        noise.read_message(message, &mut payload)?;
        if noise.is_handshake_finished() {
            self.caller_key = noise.get_remote_static().and_then(|k| k.try_into().ok());
            self.transport = Some(noise.into_transport_mode()?);
            return Ok(Step::Read);
        }
        let mut out = vec![0u8; MAX_FRAME];
        let n = noise.write_message(&[], &mut out)?;
        self.noise = Some(noise);
        Ok(Step::Send(frame(&out[..n])))
    }

    /// Encrypts and frames the answer. An answer too long for one frame is
    /// never cut (that would be invalid JSON): the caller gets
    /// `NERR_BufTooSmall` (2123) saying how long it was instead.
    pub fn seal(&mut self, response: &Response) -> Result<Vec<u8>, RemoteError> {
        let transport = self
            .transport
            .as_mut()
            .ok_or_else(|| RemoteError::Protocol("no channel yet".into()))?;
        let to_json =
            |r: &Response| serde_json::to_vec(r).map_err(|e| RemoteError::Protocol(e.to_string()));
        let mut json = to_json(response)?;
        if json.len() > MAX_ANSWER {
            json = to_json(&Response::Error {
                code: NetApiStatus::NERR_BUF_TOO_SMALL.0,
                detail: format!(
                    "the answer is {} bytes; a remote call carries at most {MAX_ANSWER}",
                    json.len()
                ),
            })?;
        }
        let mut out = vec![0u8; MAX_FRAME];
        let n = transport.write_message(&json, &mut out)?;
        Ok(frame(&out[..n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsend_control::remote::check_frame;

    /// A caller's side after a whole handshake with `responder` (which
    /// holds `server`'s key), as `client`.
    fn handshake(
        responder: &mut Responder,
        server: &KeyPair,
        client: &KeyPair,
    ) -> snow::TransportState {
        let mut noise = client.initiator().unwrap();
        let mut buf = vec![0u8; MAX_FRAME];
        let mut payload = vec![0u8; MAX_FRAME];
        let n = noise.write_message(&[], &mut buf).unwrap();
        let Step::Send(reply) = responder.handle(&buf[..n]).unwrap() else {
            panic!()
        };
        noise.read_message(&reply[2..], &mut payload).unwrap();
        assert_eq!(noise.get_remote_static().unwrap(), server.public);
        let n = noise.write_message(&[], &mut buf).unwrap();
        assert!(matches!(responder.handle(&buf[..n]).unwrap(), Step::Read));
        assert_eq!(responder.caller_key(), Some(&client.public));
        noise.into_transport_mode().unwrap()
    }

    #[test]
    fn responder_runs_a_handshake_and_decrypts_one_request() {
        let server = KeyPair::generate().unwrap();
        let client = KeyPair::generate().unwrap();
        let mut responder = Responder::new(&server).unwrap();
        let mut noise = handshake(&mut responder, &server, &client);
        let mut buf = vec![0u8; MAX_FRAME];
        let mut payload = vec![0u8; MAX_FRAME];
        let n = noise
            .write_message(&serde_json::to_vec(&Request::Names).unwrap(), &mut buf)
            .unwrap();
        assert!(matches!(
            responder.handle(&buf[..n]).unwrap(),
            Step::Request(r) if matches!(*r, Request::Names)
        ));
        let sealed = responder.seal(&Response::Ok).unwrap();
        let n = noise.read_message(&sealed[2..], &mut payload).unwrap();
        let answer: Response = serde_json::from_slice(&payload[..n]).unwrap();
        assert!(matches!(answer, Response::Ok));
        // Garbage in place of a handshake message is an error, not a panic.
        let mut other = Responder::new(&server).unwrap();
        assert!(other.handle(b"\x00\x01garbage").is_err());
        assert!(other.handle(b"again").is_err());
    }

    #[test]
    fn an_answer_too_long_for_a_frame_becomes_an_error_not_invalid_json() {
        let server = KeyPair::generate().unwrap();
        let client = KeyPair::generate().unwrap();
        let mut responder = Responder::new(&server).unwrap();
        let mut noise = handshake(&mut responder, &server, &client);
        let mut payload = vec![0u8; MAX_FRAME];
        let error = |detail: String| Response::Error { code: 0, detail };
        let overhead = serde_json::to_vec(&error(String::new())).unwrap().len();
        for (len, fits) in [
            (MAX_ANSWER, true),
            (MAX_ANSWER + 1, false),
            (200_000, false),
        ] {
            let response = error("x".repeat(len - overhead));
            let sealed = responder.seal(&response).unwrap();
            let n = noise.read_message(&sealed[2..], &mut payload).unwrap();
            let answer: Response = serde_json::from_slice(&payload[..n]).unwrap();
            match answer {
                Response::Error { code: 0, detail } => {
                    assert!(fits && detail.len() == len - overhead);
                }
                Response::Error { code, detail } => {
                    assert!(
                        !fits && code == NetApiStatus::NERR_BUF_TOO_SMALL.0,
                        "{detail}"
                    );
                    assert!(detail.contains(&format!("is {len} bytes")), "{detail}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// The caller of `netsend_control::remote` and this responder, over a
    /// real TCP socket: the handshake, one request, one sealed answer, and
    /// the server's key recorded as known.
    #[test]
    fn a_caller_and_the_responder_agree_over_a_socket() {
        use std::io::{Read as _, Write as _};
        let server = KeyPair::generate().unwrap();
        let client = KeyPair::generate().unwrap();
        let server_key = server.public;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let serving = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut responder = Responder::new(&server).unwrap();
            loop {
                let mut head = [0u8; 2];
                stream.read_exact(&mut head).unwrap();
                let mut body = vec![0u8; usize::from(u16::from_be_bytes(head))];
                stream.read_exact(&mut body).unwrap();
                match responder.handle(&body).unwrap() {
                    Step::Send(bytes) => stream.write_all(&bytes).unwrap(),
                    Step::Read => {}
                    Step::Request(request) => {
                        assert!(matches!(*request, Request::Names), "{request:?}");
                        let sealed = responder.seal(&Response::Deleted { count: 7 }).unwrap();
                        stream.write_all(&sealed).unwrap();
                        return responder.caller_key().copied();
                    }
                }
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let known = netsend_control::remote::KnownServers::new(dir.path().join("known_servers"));
        let answer = netsend_control::remote::call(
            address,
            "192.0.2.7:2139",
            &client,
            &known,
            &Request::Names,
            std::time::Duration::from_secs(10),
        )
        .unwrap();
        assert!(
            matches!(answer, Response::Deleted { count: 7 }),
            "{answer:?}"
        );
        assert_eq!(serving.join().unwrap(), Some(client.public));
        let recorded = std::fs::read_to_string(known.path()).unwrap();
        assert_eq!(
            recorded,
            format!(
                "192.0.2.7:2139 {}\n",
                netsend_control::remote::public_key_text(&server_key)
            )
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_responder(
            frames in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..200), 0..4),
        ) {
            let server = KeyPair::generate().unwrap();
            let mut responder = Responder::new(&server).unwrap();
            for f in &frames {
                let _ = check_frame(f);
                let _ = responder.handle(f);
            }
            proptest::prop_assert!(responder.caller_key().is_none());
        }
    }
}
