//! A minimal HTTP/1.1 client for the Docker Engine API: one request per
//! connection (`Connection: close`), over a unix socket or loopback TCP,
//! with the response body streamed (`Content-Length`, chunked, or until the
//! daemon closes).
//!
//! It is this small on purpose: the engine API needs GET only, no TLS, no
//! redirects and no pooling, and a general client (ureq) has no unix-socket
//! transport to plug in without a connector of its own.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Longest status line plus headers we accept.
const MAX_HEAD: usize = 64 * 1024;

/// Longest chunk-size line (hex size plus extensions).
const MAX_CHUNK_LINE: usize = 4096;

/// Time a single read may wait for bytes: a stalled daemon becomes an
/// error instead of a hang. Exports of big layers go on for minutes, but
/// never without bytes for this long.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// `host:port` over plain TCP.
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// A connected socket of either kind.
enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
        }
    }
}

/// A response whose head has been read; the body streams from [`Response::body`].
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Body,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// How the body's end is known.
enum Framing {
    /// This many bytes remain.
    Length(u64),
    /// Chunked: bytes left in the current chunk, and whether the last chunk was read.
    Chunked { left: u64, done: bool },
    /// Until the daemon closes the connection.
    Close,
}

/// A response body: reads end where the framing says the body ends.
pub struct Body {
    conn: BufReader<Conn>,
    framing: Framing,
}

/// Sends `GET path` to `endpoint` and reads the response head.
///
/// # Errors
/// Connection failures (with the OS error kind intact, so callers can tell
/// "no daemon" from "permission denied") and malformed responses.
pub fn get(endpoint: &Endpoint, path: &str) -> io::Result<Response> {
    let mut conn = match endpoint {
        Endpoint::Unix(p) => {
            let s = UnixStream::connect(p)?;
            s.set_read_timeout(Some(READ_TIMEOUT))?;
            Conn::Unix(s)
        }
        Endpoint::Tcp(addr) => {
            let s = TcpStream::connect(addr.as_str())?;
            s.set_read_timeout(Some(READ_TIMEOUT))?;
            Conn::Tcp(s)
        }
    };
    let host = match endpoint {
        Endpoint::Unix(_) => "docker",
        Endpoint::Tcp(a) => a.as_str(),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: strata/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    conn.write_all(request.as_bytes())?;
    conn.flush()?;
    read_response(BufReader::with_capacity(64 * 1024, conn))
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one CRLF- (or LF-) terminated line of at most `max` bytes, without the terminator.
fn read_line(r: &mut impl BufRead, max: usize) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r.take(max as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    if line.last() != Some(&b'\n') {
        return Err(bad(format!("line longer than {max} bytes")));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| bad("header is not UTF-8"))
}

fn read_response(mut conn: BufReader<Conn>) -> io::Result<Response> {
    let status_line = read_line(&mut conn, MAX_HEAD)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("not an HTTP/1.x response: {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    let mut total = status_line.len();
    loop {
        let line = read_line(&mut conn, MAX_HEAD)?;
        total += line.len() + 2;
        if total > MAX_HEAD {
            return Err(bad(format!("response head longer than {MAX_HEAD} bytes")));
        }
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(bad(format!("malformed header line {line:?}")));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let framing = if chunked {
        Framing::Chunked { left: 0, done: false }
    } else if let Some(len) = find("content-length") {
        Framing::Length(len.parse().map_err(|_| bad(format!("bad Content-Length {len:?}")))?)
    } else if status == 204 || status == 304 {
        Framing::Length(0)
    } else {
        Framing::Close
    };
    Ok(Response { status, headers, body: Body { conn, framing } })
}

impl Body {
    /// Reads the whole body, refusing more than `max` bytes.
    ///
    /// # Errors
    /// I/O failures, or a body over `max`.
    pub fn read_limited(mut self, max: u64) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        (&mut self).take(max + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 > max {
            return Err(bad(format!("response body larger than {max} bytes")));
        }
        Ok(buf)
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.framing {
            Framing::Length(0) => Ok(0),
            Framing::Length(left) => {
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.conn.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("connection closed with {left} bytes of the body still to come"),
                    ));
                }
                *left -= n as u64;
                Ok(n)
            }
            Framing::Close => self.conn.read(buf),
            Framing::Chunked { done: true, .. } => Ok(0),
            Framing::Chunked { left, done } => {
                if *left == 0 {
                    let line = read_line(&mut self.conn, MAX_CHUNK_LINE)?;
                    let hex = line.split(';').next().unwrap_or_default().trim();
                    let size = u64::from_str_radix(hex, 16)
                        .map_err(|_| bad(format!("bad chunk size line {line:?}")))?;
                    if size == 0 {
                        // Trailers, then the empty line that ends the message.
                        while !read_line(&mut self.conn, MAX_CHUNK_LINE)?.is_empty() {}
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.conn.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed in the middle of a chunk",
                    ));
                }
                *left -= n as u64;
                if *left == 0 && !read_line(&mut self.conn, 2)?.is_empty() {
                    return Err(bad("chunk not followed by CRLF"));
                }
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// Serves one canned response on a fresh unix socket and returns what
    /// `get` made of it.
    fn exchange(raw: &'static [u8]) -> io::Result<(u16, Vec<u8>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            while !head.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                if r.read(&mut b).unwrap() == 0 {
                    break;
                }
                head.push(b[0]);
            }
            s.write_all(raw).unwrap();
            String::from_utf8(head).unwrap()
        });
        let resp = get(&Endpoint::Unix(path), "/v1.41/_ping");
        let out = resp.and_then(|r| {
            let status = r.status;
            let mut body = Vec::new();
            let mut b = r.body;
            b.read_to_end(&mut body)?;
            Ok((status, body))
        });
        let head = server.join().unwrap();
        assert!(head.starts_with("GET /v1.41/_ping HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("Connection: close\r\n"));
        out
    }

    #[test]
    fn bodies_by_framing() {
        let cases: &[(&'static [u8], u16, &[u8])] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOKextra", 200, b"OK"),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nTrailer: t\r\n\r\n",
                200,
                b"abcdefg",
            ),
            (b"HTTP/1.0 404 Not Found\r\nX: y\r\n\r\nuntil close", 404, b"until close"),
            (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
        ];
        for (raw, status, body) in cases {
            let (s, b) = exchange(raw).unwrap();
            assert_eq!((s, b.as_slice()), (*status, *body), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn broken_responses_are_errors() {
        let cases: &[&'static [u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        ];
        for raw in cases {
            assert!(exchange(raw).is_err(), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn missing_socket_keeps_the_os_error() {
        let e = get(&Endpoint::Unix("/nonexistent/strata.sock".into()), "/_ping").err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
