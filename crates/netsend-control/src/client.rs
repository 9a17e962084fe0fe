//! The control socket's clients: [`call_blocking`] for synchronous callers
//! such as the C ABI, and `call` (cargo feature `async`) for tokio programs.
//! Both send one [`Request`] line and read one [`Response`] line of at most
//! [`MAX_LINE_LEN`] bytes.

use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;

use crate::protocol::{Request, Response, MAX_LINE_LEN};
use crate::ClientError;

/// Maps a failed connect to [`ClientError::NotRunning`] when nothing listens.
fn connect_error(socket: &Path, e: std::io::Error) -> ClientError {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ClientError::NotRunning(socket.to_owned())
        }
        _ => ClientError::Io(e),
    }
}

/// The request as one line.
fn request_line(request: &Request) -> Result<String, ClientError> {
    let mut line =
        serde_json::to_string(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push('\n');
    Ok(line)
}

/// Parses the answer line (`read` bytes long).
fn parse_answer(read: usize, answer: &str) -> Result<Response, ClientError> {
    if read == 0 {
        return Err(ClientError::Protocol("connection closed".into()));
    }
    serde_json::from_str(answer).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// Sends one request and waits for its response.
#[cfg(feature = "async")]
pub async fn call(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| connect_error(socket, e))?;
    let (read, mut write) = stream.into_split();
    write.write_all(request_line(request)?.as_bytes()).await?;
    let mut reader = tokio::io::BufReader::new(read);
    let mut answer = String::new();
    let n = (&mut reader)
        .take(MAX_LINE_LEN as u64)
        .read_line(&mut answer)
        .await?;
    parse_answer(n, &answer)
}

/// Sends one request without an async runtime and waits for its response;
/// each read and write waits at most `timeout`.
pub fn call_blocking(
    socket: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    use std::io::{BufRead as _, Read as _};
    use std::os::fd::AsRawFd as _;
    let stream =
        std::os::unix::net::UnixStream::connect(socket).map_err(|e| connect_error(socket, e))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // MSG_NOSIGNAL: a service that went away must not raise SIGPIPE in the
    // program that loaded the C ABI, whose signal dispositions are its own.
    let line = request_line(request)?;
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        match nix::sys::socket::send(stream.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL) {
            Ok(sent) => rest = &rest[sent..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(ClientError::Io(e.into())),
        }
    }
    let mut answer = String::new();
    let n = std::io::BufReader::new(stream)
        .take(MAX_LINE_LEN as u64)
        .read_line(&mut answer)?;
    parse_answer(n, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead as _, Write as _};
    use std::os::unix::net::UnixListener;

    /// A one-call server on a real socket: reads one line, answers `answer`.
    fn serve_once(socket: &Path, answer: &'static str) -> std::thread::JoinHandle<String> {
        let listener = UnixListener::bind(socket).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            std::io::BufReader::new(&stream)
                .read_line(&mut line)
                .unwrap();
            (&stream).write_all(answer.as_bytes()).unwrap();
            line
        })
    }

    #[test]
    fn blocking_call_sends_one_line_and_reads_one() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let server = serve_once(&socket, "{\"result\":\"deleted\",\"count\":3}\n");
        let request = Request::InboxDelete {
            ids: vec![1, 2],
            read: true,
        };
        let answer = call_blocking(&socket, &request, Duration::from_secs(5)).unwrap();
        assert!(
            matches!(answer, Response::Deleted { count: 3 }),
            "{answer:?}"
        );
        let line = server.join().unwrap();
        assert_eq!(
            line,
            "{\"op\":\"inbox_delete\",\"ids\":[1,2],\"read\":true}\n"
        );
    }

    #[test]
    fn failures_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let timeout = Duration::from_secs(5);
        assert!(matches!(
            call_blocking(&socket, &Request::Status, timeout),
            Err(ClientError::NotRunning(p)) if p == socket
        ));
        let server = serve_once(&socket, "not json\n");
        assert!(matches!(
            call_blocking(&socket, &Request::Status, timeout),
            Err(ClientError::Protocol(_))
        ));
        server.join().unwrap();
        std::fs::remove_file(&socket).unwrap();
        let server = serve_once(&socket, "");
        assert!(matches!(
            call_blocking(&socket, &Request::Status, timeout),
            Err(ClientError::Protocol(e)) if e == "connection closed"
        ));
        server.join().unwrap();
    }

    #[cfg(feature = "async")]
    #[test]
    fn async_call_matches_the_blocking_one() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let server = serve_once(
            &socket,
            "{\"result\":\"error\",\"code\":2273,\"detail\":\"no such name\"}\n",
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = runtime.block_on(call(&socket, &Request::Names)).unwrap();
        let error = answer.into_result().unwrap_err();
        assert_eq!(error.status().0, 2273);
        assert_eq!(error.to_string(), "no such name");
        assert_eq!(server.join().unwrap(), "{\"op\":\"names\"}\n");
    }
}
