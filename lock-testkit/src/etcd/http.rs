//! Just enough HTTP/1.1 and JSON to talk to etcd's v3 JSON gateway (the
//! gRPC gateway etcd serves on its client port) on loopback: one `POST` per
//! connection, and string fields read out of the compact JSON etcd writes.
//!
//! Not a general client: the gateway's answers are small, machine-written
//! JSON objects whose fields of interest (`member_id`, `leader`, `value`)
//! each appear once, with string values that need no unescaping (decimal
//! numbers and base64).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The largest answer read; the gateway's answers to the kit are far smaller.
const MAX_RESPONSE: usize = 1 << 20;

/// Sends `POST path` with the JSON `body` to `127.0.0.1:port` and returns
/// the response body, failing on a status other than 2xx (the error then
/// carries the body, where etcd says why) or when the whole exchange takes
/// longer than `timeout`.
pub(crate) fn post_json(
    port: u16,
    path: &str,
    body: &str,
    timeout: Duration,
) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let raw = read_to_close(&mut stream, deadline)?;
    let (status, response) = parse_response(&raw)?;
    if (200..300).contains(&status) {
        Ok(response)
    } else {
        Err(io::Error::other(format!(
            "POST {path} on port {port}: HTTP {status}: {response}"
        )))
    }
}

/// Reads until the server closes the connection (the request asked it to),
/// or fails with `TimedOut` at `deadline`.
fn read_to_close(stream: &mut TcpStream, deadline: Instant) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no complete HTTP response in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(raw),
            Ok(n) if raw.len() + n <= MAX_RESPONSE => raw.extend_from_slice(&buf[..n]),
            Ok(_) => return Err(io::Error::other("HTTP response too large")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no complete HTTP response in time",
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Splits a whole HTTP/1.1 response into its status code and body, undoing
/// chunked transfer encoding.
fn parse_response(raw: &[u8]) -> io::Result<(u16, String)> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| invalid("HTTP response without end of headers"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("HTTP response without a status code"))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(body).ok_or_else(|| invalid("bad chunked HTTP body"))?
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// The payload of a chunked body, `None` if it is malformed or cut short.
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = body.split_once("\r\n")?;
        let size_hex = size_line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// The string value of the first `"name":"…"` field in `json`.
pub(crate) fn string_field<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":");
    let start = json.find(&key)? + key.len();
    let rest = json[start..].trim_start().strip_prefix('"')?;
    rest.find('"').map(|end| &rest[..end])
}

/// The first `"name":"<decimal>"` field in `json`, as a number (etcd writes
/// its 64-bit numbers as strings).
pub(crate) fn number_field(json: &str, name: &str) -> Option<u64> {
    string_field(json, name)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = r#"{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"1","raft_term":"2"},"version":"3.4.23","dbSize":"20480","leader":"13668033151171901709","raftIndex":"4","raftTerm":"2"}"#;

    #[test]
    fn fields_are_read_from_the_gateways_json() {
        assert_eq!(
            number_field(STATUS, "member_id"),
            Some(13_668_033_151_171_901_709)
        );
        assert_eq!(
            number_field(STATUS, "leader"),
            Some(13_668_033_151_171_901_709)
        );
        assert_eq!(string_field(STATUS, "version"), Some("3.4.23"));
        assert_eq!(string_field(STATUS, "value"), None);
        assert_eq!(number_field(r#"{"leader": "0"}"#, "leader"), Some(0));
        assert_eq!(number_field(r#"{"leader":7}"#, "leader"), None);
    }

    #[test]
    fn responses_with_a_length_or_chunks_are_parsed() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), (200, "{}".to_owned()));
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
                        4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).unwrap(),
            (503, "{\"a\":1}".to_owned())
        );
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{}")
                .is_err()
        );
        assert!(parse_response(b"garbage").is_err());
    }
}
