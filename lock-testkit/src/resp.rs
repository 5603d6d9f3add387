//! A minimal RESP2 client for the kit's own admin commands (`ROLE`,
//! `INFO`, `SENTINEL …`): one command per fresh loopback connection.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Timeout for connecting, writing and reading during one command. Short,
/// so that polling a paused (`SIGSTOP`) server costs at most this much.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How deep arrays may nest in a reply (the kit's commands nest two deep).
const MAX_DEPTH: usize = 8;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK`: a status line.
    Status(String),
    /// `-ERR …`: an error, without the dash.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$…`: a bulk string, `None` for the null bulk string.
    Bulk(Option<String>),
    /// `*…`: an array, `None` for the null array.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The text of a status or bulk string reply.
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            Reply::Status(text) | Reply::Bulk(Some(text)) => Some(text),
            _ => None,
        }
    }

    /// The items of an array reply; empty for anything else.
    pub(crate) fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(items)) => items,
            _ => &[],
        }
    }

    /// In a flat `[name, value, name, value, …]` array (what `SENTINEL
    /// replicas` gives for each replica), the value following `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.items()
            .chunks_exact(2)
            .find(|pair| pair[0].text() == Some(name))
            .and_then(|pair| pair[1].text())
    }
}

/// Sends `args` to the server on loopback `port` and reads its reply; an
/// error reply is returned as [`Reply::Error`].
pub(crate) fn command(port: u16, args: &[&str]) -> io::Result<Reply> {
    pipeline(port, &[args])?
        .pop()
        .ok_or_else(|| invalid("no reply"))
}

/// Sends `commands` to the server on loopback `port` over one connection
/// (as `WAIT` needs: it waits for this connection's writes), returning
/// their replies in order, error replies included.
pub(crate) fn pipeline(port: u16, commands: &[&[&str]]) -> io::Result<Vec<Reply>> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut request = Vec::new();
    for args in commands {
        request.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in *args {
            request.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
    }
    stream.write_all(&request)?;
    let mut reader = BufReader::new(stream);
    commands
        .iter()
        .map(|_| read_reply(&mut reader, 0))
        .collect()
}

/// Like [`command`], but an error reply is an [`io::Error`] quoting it.
pub(crate) fn call(port: u16, args: &[&str]) -> io::Result<Reply> {
    match command(port, args)? {
        Reply::Error(error) => Err(io::Error::other(format!(
            "the server on port {port} answered `{error}` to `{}`",
            args.join(" ")
        ))),
        reply => Ok(reply),
    }
}

fn read_reply(reader: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection without replying",
        ));
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" => Ok(Reply::Status(rest.to_owned())),
        "-" => Ok(Reply::Error(rest.to_owned())),
        ":" => Ok(Reply::Integer(number(rest)?)),
        "$" => match usize::try_from(number(rest)?) {
            Ok(len) => {
                let mut payload = vec![0; len + 2];
                reader.read_exact(&mut payload)?;
                payload.truncate(len);
                let text = String::from_utf8_lossy(&payload).into_owned();
                Ok(Reply::Bulk(Some(text)))
            }
            Err(_) => Ok(Reply::Bulk(None)),
        },
        "*" if depth < MAX_DEPTH => match usize::try_from(number(rest)?) {
            Ok(len) => (0..len)
                .map(|_| read_reply(reader, depth + 1))
                .collect::<io::Result<_>>()
                .map(|items| Reply::Array(Some(items))),
            Err(_) => Ok(Reply::Array(None)),
        },
        _ => Err(invalid(line)),
    }
}

fn number(text: &str) -> io::Result<i64> {
    text.parse().map_err(|_| invalid(text))
}

fn invalid(text: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a RESP2 reply the kit understands: `{text}`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &str) -> io::Result<Reply> {
        read_reply(&mut bytes.as_bytes(), 0)
    }

    #[test]
    fn parses_every_reply_kind() {
        assert_eq!(parse("+OK\r\n").unwrap(), Reply::Status("OK".into()));
        assert_eq!(parse("-ERR no\r\n").unwrap(), Reply::Error("ERR no".into()));
        assert_eq!(parse(":-3\r\n").unwrap(), Reply::Integer(-3));
        assert_eq!(parse("$-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(parse("*-1\r\n").unwrap(), Reply::Array(None));
        let nested = parse("*2\r\n*2\r\n$4\r\nname\r\n$1\r\nx\r\n$4\r\na\r\nb\r\n").unwrap();
        assert_eq!(nested.items()[0].field("name"), Some("x"));
        assert_eq!(nested.items()[1].text(), Some("a\r\nb"));
        assert!(parse("?\r\n").is_err());
        assert!(parse("").is_err());
    }
}
