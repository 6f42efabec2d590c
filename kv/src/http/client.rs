//! A blocking HTTP/1.1 client over one keep-alive connection, following redirects — what the
//! CLI, the crash test and the benchmark use to talk to the servers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{HEADERS_MAX, HEAD_BYTES_MAX};

/// Largest response body the client reads.
const BODY_BYTES_MAX: usize = 64 << 20;
/// Redirects followed before giving up.
const REDIRECTS_MAX: usize = 5;

/// A response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The `Location` header.
    pub location: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
}

/// Why a request got no response. Whether it took effect is unknown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No connection could be made: the request was certainly not delivered.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The server.
        address: String,
        /// The error.
        source: std::io::Error,
    },
    /// Writing or reading failed (including timeouts).
    #[error("{address}: {source}")]
    Io {
        /// The server.
        address: String,
        /// The error.
        source: std::io::Error,
    },
    /// The response is not valid HTTP or exceeds the client's limits.
    #[error("{address}: bad response: {reason}")]
    BadResponse {
        /// The server.
        address: String,
        /// What was wrong.
        reason: String,
    },
    /// Too many redirects, or one to a location this client cannot follow.
    #[error("redirect loop or unsupported location {0:?}")]
    Redirect(Option<String>),
}

/// One connection to one server at a time; redirects move it to the new server.
#[derive(Debug)]
pub struct HttpClient {
    address: String,
    timeout: Duration,
    connection: Option<BufReader<TcpStream>>,
}

impl HttpClient {
    /// A client for the server at `address` (`host:port`); every IO waits at most `timeout`.
    pub fn new(address: impl Into<String>, timeout: Duration) -> HttpClient {
        HttpClient { address: address.into(), timeout, connection: None }
    }

    /// The server the client talks to now (after redirects).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Points the client at another server.
    pub fn set_address(&mut self, address: impl Into<String>) {
        self.address = address.into();
        self.connection = None;
    }

    /// Sends a request and reads the response, following `307` redirects.
    ///
    /// # Errors
    /// [`HttpError`] when no response could be had.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, HttpError> {
        let mut path = path.to_owned();
        for _ in 0..=REDIRECTS_MAX {
            let response = self.exchange(method, &path, body)?;
            if response.status != 307 {
                return Ok(response);
            }
            let location = response.location.clone();
            let target = location.as_deref().and_then(|l| l.strip_prefix("http://"));
            let Some((address, rest)) = target.and_then(|t| t.split_once('/')) else {
                return Err(HttpError::Redirect(location));
            };
            self.set_address(address);
            path = format!("/{rest}");
        }
        Err(HttpError::Redirect(None))
    }

    /// One request on the kept-alive connection, reconnecting once if it went stale.
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, HttpError> {
        let reused = self.connection.is_some();
        match self.try_exchange(method, path, body) {
            // A kept-alive connection the server closed meanwhile. Only reads are retried: a
            // write may have reached a handler before the server went away, and running it
            // twice could reorder it after a later write.
            Err(HttpError::Io { source, .. })
                if reused
                    && method == "GET"
                    && source.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                self.connection = None;
                self.try_exchange(method, path, body)
            }
            other => other,
        }
    }

    fn try_exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, HttpError> {
        let io = |source| HttpError::Io { address: self.address.clone(), source };
        if self.connection.is_none() {
            let stream = connect(&self.address, self.timeout)
                .map_err(|source| HttpError::Connect { address: self.address.clone(), source })?;
            self.connection = Some(BufReader::new(stream));
        }
        let connection = self.connection.as_mut().expect("invariant: connected above");
        let body = body.unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.address,
            body.len()
        );
        let written = connection
            .get_mut()
            .write_all(&[head.as_bytes(), body].concat())
            .and_then(|()| connection.get_mut().flush());
        let result = written.map_err(io).and_then(|()| read_response(connection, &self.address));
        if result.is_err() {
            self.connection = None;
        }
        result
    }
}

fn connect(address: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let mut last_error = std::io::Error::other("address resolves to nothing");
    for socket_address in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&socket_address, timeout) {
            Ok(stream) => {
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

fn read_response(connection: &mut impl BufRead, address: &str) -> Result<HttpResponse, HttpError> {
    let io = |source| HttpError::Io { address: address.to_owned(), source };
    let bad = |reason: String| HttpError::BadResponse { address: address.to_owned(), reason };
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let read = connection.by_ref().take(1024).read_until(b'\n', &mut head).map_err(io)?;
        if read == 0 {
            return Err(io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        if head.len() > HEAD_BYTES_MAX {
            return Err(bad("head too large".into()));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad("incomplete head".into())),
        Err(error) => return Err(bad(error.to_string())),
    }
    let status = parsed.code.ok_or_else(|| bad("no status".into()))?;
    let (mut length, mut location, mut content_type, mut chunked) = (0usize, None, None, false);
    for header in parsed.headers.iter() {
        let value = String::from_utf8_lossy(header.value).trim().to_owned();
        if header.name.eq_ignore_ascii_case("content-length") {
            length = value.parse().map_err(|_| bad(format!("content-length {value:?}")))?;
        } else if header.name.eq_ignore_ascii_case("location") {
            location = Some(value);
        } else if header.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // Other servers (etcd's gateway and metrics, for the benchmark) send bodies of
            // unknown length chunked; no other coding is accepted.
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(bad(format!("transfer-encoding {value:?}")));
            }
            chunked = true;
        }
    }
    let body = if chunked {
        read_chunked(connection).map_err(|error| match error {
            ChunkError::Io(source) => io(source),
            ChunkError::Bad(reason) => bad(reason),
        })?
    } else {
        if length > BODY_BYTES_MAX {
            return Err(bad(format!("body of {length} bytes")));
        }
        let mut body = vec![0; length];
        connection.read_exact(&mut body).map_err(io)?;
        body
    };
    Ok(HttpResponse { status, body, location, content_type })
}

enum ChunkError {
    Io(std::io::Error),
    Bad(String),
}

impl From<std::io::Error> for ChunkError {
    fn from(error: std::io::Error) -> ChunkError {
        ChunkError::Io(error)
    }
}

/// A `transfer-encoding: chunked` body (RFC 9112 §7.1): chunks of a hexadecimal size line,
/// the bytes and a CRLF, up to a chunk of size 0 and the trailer section, which is skipped.
fn read_chunked(connection: &mut impl BufRead) -> Result<Vec<u8>, ChunkError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(connection)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| ChunkError::Bad(format!("chunk size {size:?}")))?;
        if size == 0 {
            break;
        }
        if body.len().saturating_add(size) > BODY_BYTES_MAX {
            return Err(ChunkError::Bad(format!("chunked body over {BODY_BYTES_MAX} bytes")));
        }
        let start = body.len();
        body.resize(start + size, 0);
        connection.read_exact(&mut body[start..])?;
        if !read_line(connection)?.is_empty() {
            return Err(ChunkError::Bad("no CRLF after a chunk".into()));
        }
    }
    // Trailer fields, up to the empty line.
    while !read_line(connection)?.is_empty() {}
    Ok(body)
}

/// One line of at most 1 KiB, without its line ending.
fn read_line(connection: &mut impl BufRead) -> Result<String, ChunkError> {
    let mut line = Vec::new();
    connection.by_ref().take(1024).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(if line.len() >= 1024 {
            ChunkError::Bad("line of a chunked body over 1 KiB".into())
        } else {
            ChunkError::Io(std::io::ErrorKind::UnexpectedEof.into())
        });
    }
    let line = String::from_utf8_lossy(&line);
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<HttpResponse, HttpError> {
        read_response(&mut std::io::BufReader::new(bytes), "test")
    }

    #[test]
    fn a_content_length_body() {
        let response = read(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhiEXTRA").expect("ok");
        assert_eq!((response.status, response.body.as_slice()), (200, &b"hi"[..]));
    }

    #[test]
    fn a_chunked_body_with_extensions_and_trailers() {
        let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                      5\r\nhello\r\n7;name=x\r\n, world\r\n0\r\nTrailer: y\r\n\r\n";
        let response = read(bytes).expect("a chunked response");
        assert_eq!(response.body, b"hello, world");
        // What follows the response on the connection is left for the next one.
        let mut connection = std::io::BufReader::new(&b"a\r\n0123456789\r\n0\r\n\r\nNEXT"[..]);
        assert_eq!(read_chunked(&mut connection).ok(), Some(b"0123456789".to_vec()));
        let mut rest = String::new();
        connection.read_to_string(&mut rest).expect("in memory");
        assert_eq!(rest, "NEXT");
    }

    #[test]
    fn bad_chunked_bodies_are_refused() {
        let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        for (body, expected) in [
            ("zz\r\n", "bad response: chunk size"),
            ("3\r\nabcd\r\n0\r\n\r\n", "no CRLF after a chunk"),
            ("3\r\nab", "failed to fill whole buffer"),
            ("3\r\nabc\r\n", "unexpected end of file"),
            ("fffffffffff\r\n", "chunked body over"),
        ] {
            let error = read(format!("{head}{body}").as_bytes()).expect_err(body).to_string();
            assert!(error.contains(expected), "{body:?}: {error}");
        }
        let gzip = read(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n").expect_err("gzip");
        assert!(gzip.to_string().contains("transfer-encoding \"gzip\""), "{gzip}");
    }
}
