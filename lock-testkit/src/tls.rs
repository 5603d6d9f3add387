//! TLS-only servers, and the throwaway certificates they present.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::builder::RedisServerBuilder;
use crate::port::free_port;
use crate::scratch::scratch_dir;
use crate::server::RedisServer;

/// Names the server certificate is valid for: what tests put in their URLs.
const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];
/// How many ports are tried for the TLS listener before giving up.
const PORT_ATTEMPTS: u32 = 5;
/// Timeout for each step of the plain admin connection used while starting.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A throwaway `redis-server` that speaks TLS only, on a free loopback port.
///
/// Its certificate is issued at start-up by a fresh test CA for `127.0.0.1`
/// and `localhost`; clients must trust [`ca_pem`](Self::ca_pem) to connect.
/// Clients need not present a certificate (`--tls-auth-clients no`).
/// Dropping the handle kills the server and removes the certificate files.
///
/// ```no_run
/// let server = lock_testkit::TlsRedisServer::start();
/// let url = server.url(); // "rediss://127.0.0.1:<port>"
/// let ca = server.ca_pem(); // "-----BEGIN CERTIFICATE-----…"
/// # let _ = (url, ca);
/// ```
///
/// The thread caveat of [`RedisServer`] applies: start and drop it in the
/// same test thread.
pub struct TlsRedisServer {
    /// Dropped (killed) before `files`, which it reads.
    server: RedisServer,
    tls_port: u16,
    /// The certificates, and the files the server was started with.
    files: TlsFiles,
}

impl TlsRedisServer {
    /// Starts a fresh TLS-only server.
    ///
    /// # Panics
    ///
    /// Panics with the reason if it cannot be started; see
    /// [`try_start`](Self::try_start).
    #[track_caller]
    #[must_use = "dropping a TlsRedisServer kills it"]
    pub fn start() -> TlsRedisServer {
        Self::try_start().unwrap_or_else(|e| panic!("failed to start a TLS redis-server: {e}"))
    }

    /// Starts a fresh TLS-only server.
    ///
    /// The server starts on a plain port, which only the test kit uses: once
    /// it answers, the kit opens the TLS port (`CONFIG SET tls-port`, retried
    /// on another port if that one was taken meanwhile) and closes the plain
    /// one (`CONFIG SET port 0`). From then on the server is exactly what
    /// `--port 0 --tls-port <port>` would have started.
    ///
    /// # Errors
    ///
    /// Those of [`RedisServerBuilder::start`](crate::RedisServerBuilder::start),
    /// and errors writing the certificate files. A `redis-server` built
    /// without TLS support rejects the `--tls-*` options at start-up or the
    /// `tls-port` setting after it; either error quotes what it said. (A
    /// Valkey 8.1 built without TLS crashes at `tls-port` instead: the error
    /// says the server closed the connection without an answer.)
    pub fn try_start() -> io::Result<TlsRedisServer> {
        let files = TlsFiles::write()?;
        let server = files
            .args()
            .iter()
            .cloned()
            .fold(RedisServer::builder(), RedisServerBuilder::arg)
            .start()?;
        let plain_port = server.port();
        let tls_port = open_tls_port(plain_port)?;
        admin_command(plain_port, &["CONFIG", "SET", "port", "0"])?;
        Ok(TlsRedisServer {
            server,
            tls_port,
            files,
        })
    }

    /// The connection URL, `rediss://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port)
    }

    /// The loopback port of the TLS listener, the only one the server has.
    pub fn port(&self) -> u16 {
        self.tls_port
    }

    /// The test CA's certificate (PEM), which clients must trust.
    pub fn ca_pem(&self) -> &str {
        self.files.certificates().ca_pem()
    }

    /// Every certificate of this server, for tests that need more than the CA.
    pub fn certificates(&self) -> &TestCertificates {
        self.files.certificates()
    }

    /// The process id, or `None` while the server is not running.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// Freezes the server with `SIGSTOP`; see [`RedisServer::pause`].
    #[track_caller]
    pub fn pause(&self) {
        self.server.pause();
    }

    /// Continues a paused server; see [`RedisServer::resume`].
    #[track_caller]
    pub fn resume(&self) {
        self.server.resume();
    }
}

impl fmt::Debug for TlsRedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsRedisServer")
            .field("port", &self.tls_port)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

/// Fresh [`TestCertificates`] written to a temp dir, and the `redis-server`
/// arguments that make a server (or a sentinel) use them for its TLS port
/// and its outgoing TLS connections: `--tls-cert-file`, `--tls-key-file`,
/// `--tls-ca-cert-file`, and `--tls-auth-clients no` (clients need no
/// certificate of their own). The files are removed when dropped: drop it
/// after the processes reading them. Other servers (etcd) take the
/// certificate and key files by their paths.
pub(crate) struct TlsFiles {
    certificates: TestCertificates,
    args: Vec<String>,
    cert_file: String,
    key_file: String,
    _dir: TempDir,
}

impl TlsFiles {
    /// Generates the certificates and writes them.
    pub(crate) fn write() -> io::Result<TlsFiles> {
        let certificates = TestCertificates::generate()?;
        let dir = scratch_dir("tls")?;
        let cert = write_file(dir.path(), "server.crt", certificates.server_cert_pem())?;
        let key = write_file(dir.path(), "server.key", certificates.server_key_pem())?;
        let ca = write_file(dir.path(), "ca.crt", certificates.ca_pem())?;
        let args = [
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ]
        .map(str::to_owned)
        .to_vec();
        Ok(TlsFiles {
            certificates,
            args,
            cert_file: cert,
            key_file: key,
            _dir: dir,
        })
    }

    /// The `--tls-*` arguments naming the files (no `--tls-port`).
    pub(crate) fn args(&self) -> &[String] {
        &self.args
    }

    /// The certificates in the files.
    pub(crate) fn certificates(&self) -> &TestCertificates {
        &self.certificates
    }

    /// The path of the server certificate's file (PEM).
    pub(crate) fn cert_file(&self) -> &str {
        &self.cert_file
    }

    /// The path of the server key's file (PEM, PKCS#8).
    pub(crate) fn key_file(&self) -> &str {
        &self.key_file
    }
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// A throwaway certificate authority and one server certificate it issued,
/// valid for `127.0.0.1` and `localhost`. All PEM-encoded; keys are ECDSA
/// P-256 in PKCS#8.
///
/// ```
/// let certificates = lock_testkit::TestCertificates::generate().unwrap();
/// assert!(certificates.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// ```
#[derive(Clone)]
pub struct TestCertificates {
    ca: String,
    server_cert: String,
    server_key: String,
}

impl TestCertificates {
    /// Creates a new CA and a server certificate signed by it. Every call
    /// makes a different CA, so a client trusting one rejects the others.
    ///
    /// # Errors
    ///
    /// Fails only if key generation or signing fails.
    pub fn generate() -> io::Result<TestCertificates> {
        let ca_key = KeyPair::generate().map_err(io::Error::other)?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = common_name("lock-testkit throwaway CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(io::Error::other)?;

        let server_key = KeyPair::generate().map_err(io::Error::other)?;
        let names = SERVER_NAMES.map(str::to_owned).to_vec();
        let mut server_params = CertificateParams::new(names).map_err(io::Error::other)?;
        server_params.distinguished_name = common_name("localhost");
        server_params.is_ca = IsCa::ExplicitNoCa;
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        let server_cert = server_params
            .signed_by(&server_key, &ca)
            .map_err(io::Error::other)?;

        Ok(TestCertificates {
            ca: ca.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
        })
    }

    /// The CA's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca
    }

    /// The server's certificate, issued by the CA.
    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert
    }

    /// The server certificate's private key.
    pub fn server_key_pem(&self) -> &str {
        &self.server_key
    }
}

impl fmt::Debug for TestCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCertificates")
            .field("names", &SERVER_NAMES)
            .finish_non_exhaustive()
    }
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// Writes `contents` to `dir/name`, returning the path as the UTF-8 string
/// `redis-server` gets on its command line.
fn write_file(dir: &Path, name: &str, contents: &str) -> io::Result<String> {
    let path = dir.join(name);
    fs::write(&path, contents)?;
    path.into_os_string().into_string().map_err(|path| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the temp dir path {} is not UTF-8", path.display()),
        )
    })
}

/// Makes the server on `plain_port` listen for TLS on a free port.
fn open_tls_port(plain_port: u16) -> io::Result<u16> {
    let mut last_error = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port()?;
        match admin_command(
            plain_port,
            &["CONFIG", "SET", "tls-port", &port.to_string()],
        ) {
            Ok(()) => return Ok(port),
            // The port may have been taken since `free_port` saw it free;
            // anything else (no TLS support, bad certificate) fails again.
            Err(error) if error.to_string().contains("Unable to listen") => {
                last_error = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error.expect("at least one attempt was made"))
}

/// Sends one command over a fresh plain connection; `Ok` for a `+` reply.
fn admin_command(port: u16, args: &[&str]) -> io::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, ADMIN_TIMEOUT)?;
    stream.set_read_timeout(Some(ADMIN_TIMEOUT))?;
    stream.set_write_timeout(Some(ADMIN_TIMEOUT))?;
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    stream.write_all(&request)?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while !reply.ends_with(b"\r\n") {
        match stream.read(&mut buf)? {
            0 => break,
            n => reply.extend_from_slice(&buf[..n]),
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    if reply.starts_with('+') {
        Ok(())
    } else if reply.is_empty() {
        Err(io::Error::other(format!(
            "redis-server closed the connection without answering `{}` (did it crash? \
             a build without TLS support may)",
            args.join(" ")
        )))
    } else {
        Err(io::Error::other(format!(
            "redis-server answered `{}` to `{}`",
            reply.trim_end(),
            args.join(" ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::answers_ping;

    #[test]
    fn serves_tls_only_with_a_certificate_for_loopback() {
        let server = TlsRedisServer::start();
        assert!(server.url().starts_with("rediss://127.0.0.1:"));
        // The start-up port is closed, and the TLS port does not speak plain RESP.
        assert!(!answers_ping(server.server.port()));
        assert!(!answers_ping(server.port()));
        assert!(server.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(
            server.ca_pem(),
            TestCertificates::generate().unwrap().ca_pem()
        );
    }
}
