//! Reading requests and writing responses on the server side.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{reason, HEADERS_MAX, HEAD_BYTES_MAX};

/// One parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// The body.
    pub body: Vec<u8>,
    /// Whether the client asked to close the connection after the response.
    pub close: bool,
}

/// A request that cannot be served; the connection is answered with its status and closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Reading failed or the peer went away mid-request.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The head is not valid HTTP/1.x.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The head is larger than [`HEAD_BYTES_MAX`].
    #[error("request head larger than {HEAD_BYTES_MAX} bytes")]
    HeadTooLarge,
    /// The body is larger than the server accepts.
    #[error("request body of {length} bytes exceeds the limit of {limit}")]
    BodyTooLarge {
        /// The announced length.
        length: u64,
        /// The limit.
        limit: usize,
    },
    /// A transfer encoding (chunked) that this server does not implement.
    #[error("transfer-encoding is not supported; send content-length")]
    TransferEncoding,
}

impl RequestError {
    /// The status to answer with, if the connection can still carry an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            RequestError::Io(_) => None,
            RequestError::Malformed(_) => Some(400),
            RequestError::HeadTooLarge => Some(431),
            RequestError::BodyTooLarge { .. } => Some(413),
            RequestError::TransferEncoding => Some(501),
        }
    }
}

/// Reads the next request from `stream`, using `buffer` for bytes read ahead (pipelining);
/// `Ok(None)` at a clean end of the connection.
///
/// # Errors
/// [`RequestError`] for anything that is not a request this server accepts.
pub async fn read_request<R: AsyncRead + Unpin>(
    stream: &mut R,
    buffer: &mut Vec<u8>,
    body_bytes_max: usize,
) -> Result<Option<Request>, RequestError> {
    let (head_length, mut request, content_length) = loop {
        if let Some(parsed) = parse_head(buffer)? {
            break parsed;
        }
        if buffer.len() > HEAD_BYTES_MAX {
            return Err(RequestError::HeadTooLarge);
        }
        if read_more(stream, buffer).await? == 0 {
            if buffer.is_empty() {
                return Ok(None);
            }
            return Err(RequestError::Malformed("connection closed mid-head".into()));
        }
    };
    if content_length > body_bytes_max as u64 {
        return Err(RequestError::BodyTooLarge { length: content_length, limit: body_bytes_max });
    }
    let end = head_length + content_length as usize;
    while buffer.len() < end {
        if read_more(stream, buffer).await? == 0 {
            return Err(RequestError::Malformed("connection closed mid-body".into()));
        }
    }
    request.body = buffer[head_length..end].to_vec();
    buffer.drain(..end);
    Ok(Some(request))
}

async fn read_more<R: AsyncRead + Unpin>(
    stream: &mut R,
    buffer: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut chunk = [0u8; 8192];
    let read = stream.read(&mut chunk).await?;
    buffer.extend_from_slice(&chunk[..read]);
    Ok(read)
}

/// Parses a complete head: its length, the request (without body) and the content length.
fn parse_head(buffer: &[u8]) -> Result<Option<(usize, Request, u64)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_length = match parsed.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(RequestError::Malformed(error.to_string())),
    };
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return Err(RequestError::Malformed("no request line".into()));
    };
    let mut content_length: Option<u64> = None;
    // HTTP/1.0 closes by default, HTTP/1.1 keeps alive by default.
    let mut close = parsed.version == Some(0);
    for header in parsed.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse()
                .map_err(|_| RequestError::Malformed(format!("bad content-length {value:?}")))?;
            // RFC 9112 §6.3: differing lengths leave the body's end unknown; refuse, never
            // guess (a guess waits for bytes that never come, or reads the next request).
            if let Some(earlier) = content_length.filter(|&earlier| earlier != length) {
                return Err(RequestError::Malformed(format!(
                    "conflicting content-length headers ({earlier} and {length})"
                )));
            }
            content_length = Some(length);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(RequestError::TransferEncoding);
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        body: Vec::new(),
        close,
    };
    Ok(Some((head_length, request, content_length.unwrap_or(0))))
}

/// A response to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// A `Location` header (redirects).
    pub location: Option<String>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        let mut body = serde_json::to_vec(value).unwrap_or_default();
        body.push(b'\n');
        Response { status, body, content_type: "application/json", location: None }
    }

    /// A response of `content_type` (text; the metrics).
    pub fn text(status: u16, content_type: &'static str, body: String) -> Response {
        Response { status, body: body.into_bytes(), content_type, location: None }
    }
}

/// Writes `response`; `close` adds `Connection: close`.
///
/// # Errors
/// The IO error of the write.
pub async fn write_response<W: AsyncWrite + Unpin>(
    stream: &mut W,
    response: &Response,
    close: bool,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    if let Some(location) = &response.location {
        head.push_str(&format!("location: {location}\r\n"));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    stream.write_all(&bytes).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(input: &[u8], limit: usize) -> Result<Option<Request>, RequestError> {
        let mut stream = input;
        read_request(&mut stream, &mut Vec::new(), limit).await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn pipelined_requests_are_read_one_by_one() {
        let input = b"PUT /kv/a?x=1 HTTP/1.1\r\ncontent-length: 2\r\n\r\nhiGET /status HTTP/1.1\r\nconnection: close\r\n\r\n";
        let mut stream = &input[..];
        let mut buffer = Vec::new();
        let first = read_request(&mut stream, &mut buffer, 10).await.expect("ok").expect("some");
        assert_eq!((first.method.as_str(), first.path.as_str()), ("PUT", "/kv/a"));
        assert_eq!(
            (first.query.as_str(), &first.body[..], first.close),
            ("x=1", &b"hi"[..], false)
        );
        let second = read_request(&mut stream, &mut buffer, 10).await.expect("ok").expect("some");
        assert_eq!((second.path.as_str(), second.close), ("/status", true));
        assert!(read_request(&mut stream, &mut buffer, 10).await.expect("ok").is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bad_requests_get_their_own_status() {
        let cases: [(&[u8], u16); 7] = [
            (b"PUT /kv/a HTTP/1.1\r\ncontent-length: 11\r\n\r\n", 413),
            (b"PUT /kv/a HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 9\r\n\r\nhi", 400),
            (b"PUT /kv/a HTTP/1.1\r\nContent-Length: 9\r\ncontent-length: 2\r\n\r\nhi", 400),
            (b"PUT /kv/a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n", 501),
            (b"PUT /kv/a HTTP/1.1\r\ncontent-length: x\r\n\r\n", 400),
            (b"\x00\x01garbage\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\ncontent-length: 5\r\n\r\nab", 400),
        ];
        for (input, status) in cases {
            let error = read(input, 10).await.expect_err("refused");
            assert_eq!(error.status(), Some(status), "{error}");
        }
        // The same length twice is one length.
        let twice = b"PUT /kv/a HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nhi";
        let request = read(twice, 10).await.expect("ok").expect("some");
        assert_eq!(request.body, b"hi");
        let huge = [b"GET / HTTP/1.1\r\nx: ".to_vec(), vec![b'a'; HEAD_BYTES_MAX * 2]].concat();
        assert_eq!(read(&huge, 10).await.expect_err("refused").status(), Some(431));
    }
}
