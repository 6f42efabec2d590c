//! A small HTTP/1.1 implementation with strict limits: enough for a JSON API and its client.
//!
//! Why not hyper: the API needs content-length bodies, keep-alive and a handful of routes;
//! hand-written framing over `httparse` (zero dependencies) keeps the build lean and every
//! limit explicit. What it refuses, it refuses with a clear status: chunked bodies (501), a
//! body without a length (411), a head over [`HEAD_BYTES_MAX`] (431), a body over the
//! server's limit (413), two different `content-length`s or anything else unparsable (400);
//! after such an answer the server closes the connection. The client also reads chunked
//! responses, which other servers send (the benchmark talks to etcd's gateway).

pub mod client;
pub mod server;

/// The most bytes a request or response head may take.
pub const HEAD_BYTES_MAX: usize = 16 << 10;
/// The most headers parsed.
pub const HEADERS_MAX: usize = 32;

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}
