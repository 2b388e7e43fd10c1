//! A minimal HTTP/1.1 server side: one request per connection (`Connection: close`), over plain
//! TCP or rustls. The request head is httparse's; the answer is written by hand, so that a
//! fault can trickle it byte by byte. Enough for the SMGR contract; not a general web server.

use std::io::{Read, Write};

pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request was read.
#[derive(Debug, PartialEq)]
pub enum ReadError {
    /// The peer closed before sending anything, or the socket failed or timed out: nothing to
    /// answer.
    Gone,
    /// Not a request this server can read (the reason): answered 400.
    Bad(String),
}

pub struct Response {
    pub status: u16,
    pub body: String,
    /// The Retry-After header's value (seconds or an HTTP-date).
    pub retry_after: Option<String>,
    /// Write the answer one byte every this many milliseconds (0: at once).
    pub trickle_ms: u64,
}

impl Response {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Response {
            status,
            body: body.to_string(),
            retry_after: None,
            trickle_ms: 0,
        }
    }
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Reads one request: the head, then a body of Content-Length bytes (none without it).
pub fn read_request(stream: &mut impl Read) -> Result<Request, ReadError> {
    let mut buf = Vec::new();
    let (mut request, head_len) = loop {
        if let Some(parsed) = parse_head(&buf)? {
            break parsed;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad("request head over 64 KiB".into()));
        }
        if read_more(stream, &mut buf)? == 0 {
            return Err(if buf.is_empty() {
                ReadError::Gone
            } else {
                ReadError::Bad("connection closed inside the request head".into())
            });
        }
    };
    let length = content_length(&request.headers)?;
    let mut body = buf.split_off(head_len);
    while body.len() < length {
        if read_more(stream, &mut body)? == 0 {
            let got = body.len();
            return Err(ReadError::Bad(format!(
                "body of {got} byte(s) where Content-Length is {length}"
            )));
        }
    }
    body.truncate(length);
    request.body = body;
    Ok(request)
}

/// The request head at the start of `buf` and its length; `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let status = head
        .parse(buf)
        .map_err(|e| ReadError::Bad(format!("malformed request head: {e}")))?;
    let httparse::Status::Complete(len) = status else {
        return Ok(None);
    };
    let request = Request {
        method: head.method.unwrap_or_default().to_owned(),
        path: head.path.unwrap_or_default().to_owned(),
        headers: head
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value).into_owned();
                (h.name.to_ascii_lowercase(), value)
            })
            .collect(),
        body: Vec::new(),
    };
    Ok(Some((request, len)))
}

/// The body's length: Content-Length, or none without it (RFC 9112 §6.3). A chunked body is
/// refused rather than misread: omcmsync always sends Content-Length.
fn content_length(headers: &[(String, String)]) -> Result<usize, ReadError> {
    let bad = |why: &str| Err(ReadError::Bad(why.into()));
    if headers.iter().any(|(n, _)| n == "transfer-encoding") {
        return bad("Transfer-Encoding is not supported: send Content-Length");
    }
    let mut values = headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_str());
    let Some(first) = values.next() else {
        return Ok(0);
    };
    if values.any(|v| v != first) {
        return bad("conflicting Content-Length headers");
    }
    // Digits only: `usize::from_str` would also take a sign.
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return bad("Content-Length is not a number");
    }
    match first.parse::<usize>() {
        Ok(n) if n <= MAX_BODY => Ok(n),
        _ => bad("body over 64 MiB"),
    }
}

/// One read appended to `buf`; 0 at the end of the stream.
fn read_more(stream: &mut impl Read, buf: &mut Vec<u8>) -> Result<usize, ReadError> {
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Gone),
        }
    }
}

pub fn write_response(stream: &mut impl Write, r: &Response) -> std::io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.body.len()
    );
    if let Some(after) = &r.retry_after {
        head.push_str(&format!("Retry-After: {after}\r\n"));
    }
    head.push_str("\r\n");
    if r.trickle_ms > 0 {
        for b in head.bytes().chain(r.body.bytes()) {
            stream.write_all(&[b])?;
            stream.flush()?;
            std::thread::sleep(std::time::Duration::from_millis(r.trickle_ms));
        }
        return Ok(());
    }
    stream.write_all(head.as_bytes())?;
    stream.write_all(r.body.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer whose bytes arrive in these pieces, one per read, then the end of the stream.
    struct Pieces<'a>(std::collections::VecDeque<&'a [u8]>);

    impl Read for Pieces<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let Some(piece) = self.0.pop_front() else {
                return Ok(0);
            };
            out[..piece.len()].copy_from_slice(piece);
            Ok(piece.len())
        }
    }

    fn read(pieces: &[&[u8]]) -> Result<Request, ReadError> {
        read_request(&mut Pieces(pieces.iter().copied().collect()))
    }

    fn bad(pieces: &[&[u8]]) -> String {
        match read(pieces) {
            Err(ReadError::Bad(why)) => why,
            Ok(r) => panic!("read {} {}", r.method, r.path),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_request_split_across_reads() {
        let r = read(&[
            b"PO",
            b"ST /inventory/cm/v1/elements/cm%2Deast/res",
            b"ync HTTP/1.1\r\nContent-",
            b"Length: 14\r\nIdempotency-Key: k1\r",
            b"\n\r\n{\"requ",
            b"ests\":1}",
        ])
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/inventory/cm/v1/elements/cm%2Deast/resync");
        assert_eq!(r.header("idempotency-key"), Some("k1"));
        assert_eq!(r.body, b"{\"requests\":1}");
    }

    #[test]
    fn the_body_ends_at_content_length() {
        let r = read(&[b"POST /x HTTP/1.1\r\ncontent-length: 2\r\n\r\nokNEXT"]).unwrap();
        assert_eq!(r.body, b"ok");
    }

    #[test]
    fn a_bad_request_line_is_refused() {
        for line in [
            &b"GET\r\n\r\n"[..],
            b"GET /x HTTP/9.9\r\n\r\n",
            b"GET /x\tHTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ] {
            let why = bad(&[line]);
            assert!(why.starts_with("malformed request head"), "{why}");
        }
    }

    #[test]
    fn without_content_length_there_is_no_body() {
        let r = read(&[b"POST /sim/fault HTTP/1.1\r\nHost: x\r\n\r\n{\"clear\":true}"]).unwrap();
        assert_eq!(r.method, "POST");
        assert!(r.body.is_empty());
    }

    #[test]
    fn a_body_shorter_than_announced_is_refused() {
        let why = bad(&[b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"]);
        assert_eq!(why, "body of 3 byte(s) where Content-Length is 10");
    }

    #[test]
    fn lengths_it_cannot_trust_are_refused() {
        for (head, expected) in [
            (&b"Content-Length: +5"[..], "Content-Length is not a number"),
            (b"Content-Length: 5\r\nContent-Length: 6", "conflicting"),
            (b"Transfer-Encoding: chunked", "Transfer-Encoding"),
            (b"Content-Length: 99999999999", "over 64 MiB"),
        ] {
            let request = [&b"POST /x HTTP/1.1\r\n"[..], head, b"\r\n\r\n12345"].concat();
            let why = bad(&[&request]);
            assert!(why.contains(expected), "{why}");
        }
    }

    #[test]
    fn a_head_that_never_ends_is_refused() {
        let filler = [b'a'; 1024];
        let mut pieces = vec![&b"GET / HTTP/1.1\r\nX-Filler: "[..]];
        pieces.extend(std::iter::repeat_n(&filler[..], 70));
        assert_eq!(bad(&pieces), "request head over 64 KiB");
    }

    #[test]
    fn silence_or_a_head_cut_short() {
        assert_eq!(read(&[]).err(), Some(ReadError::Gone));
        let why = bad(&[b"GET / HTTP/1.1\r\nHost: x\r\n"]);
        assert_eq!(why, "connection closed inside the request head");
    }
}
