//! `rust-onnx-serving --healthcheck`: `GET /` on the local port, exit 0 on 200 and 1 otherwise — a Docker
//! HEALTHCHECK that needs neither curl nor a shell.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Whether `GET http://127.0.0.1:{port}/` answers 200.
pub fn healthy(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, TIMEOUT) else {
        return false;
    };
    if stream.set_read_timeout(Some(TIMEOUT)).is_err() || stream.set_write_timeout(Some(TIMEOUT)).is_err() {
        return false;
    }
    let request = format!("GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    // The status line is all that matters: "HTTP/1.x 200 ...".
    let mut head = [0u8; 64];
    let mut filled = 0;
    while filled < head.len() {
        match stream.read(&mut head[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
        if head[..filled].contains(&b'\n') {
            break;
        }
    }
    status_is_ok(&head[..filled])
}

fn status_is_ok(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    matches!((parts.next(), parts.next()), (Some(version), Some(b"200")) if version.starts_with(b"HTTP/1."))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    #[test]
    fn status_lines() {
        assert!(status_is_ok(b"HTTP/1.1 200 OK\r\n"));
        assert!(status_is_ok(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n"));
        assert!(!status_is_ok(b"HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(!status_is_ok(b"HTTP/1.1 2000\r\n"));
        assert!(!status_is_ok(b""));
    }

    fn serve_once(response: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 256];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(response);
            }
        });
        port
    }

    #[test]
    fn checks_a_live_port() {
        assert!(healthy(serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")));
        assert!(!healthy(serve_once(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")));
        // Nothing listening.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert!(!healthy(port));
    }
}
