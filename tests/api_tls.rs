//! The API over HTTPS: a client that trusts the API's CA reads presence, the status
//! page, `/metrics` and the SSE feed; one that does not is refused; a plain-HTTP
//! request to the TLS port gets a clear 400; with `client_ca_file`, only clients with a
//! certificate that CA signed get in; and a certificate rewritten on disk is served to
//! new connections without a restart while connections already open carry on.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::client;
use support::daemon::{Options, Rig, address, eventually, rig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WITHIN: Duration = Duration::from_secs(15);

/// A certificate authority.
fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `names` that `ca` signed: (certificate PEM, key PEM).
fn issued(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str]) -> (String, String) {
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes `text` to `path` as a certificate rotation would: a new file renamed over.
fn replace(path: &Path, text: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

/// A client that trusts `ca` (and presents `identity` when given).
fn client(ca: &str, identity: Option<&(String, String)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    Arc::new(config)
}

/// One keep-alive HTTPS connection.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl Connection {
    /// Connects and completes the handshake; `Err` with why when refused.
    async fn open(
        addr: std::net::SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Connection, String> {
        let attempt = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .map_err(|e| e.to_string())?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            Ok(Connection { sender })
        };
        tokio::time::timeout(client::DEADLINE, attempt)
            .await
            .map_err(|_| "no handshake within the deadline".to_owned())?
    }

    /// `GET path` on this connection: the status, or why there was none.
    async fn get(&mut self, path: &str) -> Result<u16, String> {
        let request = hyper::Request::get(path)
            .header("Host", "localhost")
            .body(Empty::new())
            .unwrap();
        let attempt = async {
            self.sender.ready().await.map_err(|e| e.to_string())?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok(status)
        };
        tokio::time::timeout(client::DEADLINE, attempt)
            .await
            .map_err(|_| "no answer within the deadline".to_owned())?
    }
}

/// A new connection's `GET path`: the status, or why there was none.
async fn get_once(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<u16, String> {
    Connection::open(addr, config).await?.get(path).await
}

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ews-presence-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A rig whose API serves HTTPS from `dir`'s `api-cert.pem` and `api-key.pem` (and
/// asks for client certificates signed by `client-ca.pem` with `mutual`).
async fn https_rig(dir: &Path, mutual: bool) -> Rig {
    let mut api_extra = format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        dir.join("api-cert.pem").display(),
        dir.join("api-key.pem").display()
    );
    if mutual {
        api_extra.push_str(&format!(
            "client_ca_file = \"{}\"\n",
            dir.join("client-ca.pem").display()
        ));
    }
    rig(Options {
        mailboxes: 3,
        api_extra,
        ..Options::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_every_route_to_clients_that_trust_it_and_only_to_them() {
    let dir = dir("api-tls");
    let ca = authority("API CA");
    let (cert, key) = issued(&ca, &["localhost"]);
    std::fs::write(dir.join("api-cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("api-key.pem"), &key).unwrap();
    let mut rig = https_rig(&dir, false).await;
    let trusted = client(&ca.pem(), None);
    rig.api.tls = Some(trusted.clone());
    rig.ready().await;

    let page = client::request(&rig.api, "GET", "/", &[], "").await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<html"));
    let metrics = client::request(&rig.api, "GET", "/metrics", &[], "").await;
    assert!(String::from_utf8_lossy(&metrics.body).contains("ews_presence_build_info"));
    let presence = client::request(
        &rig.api,
        "GET",
        &format!("/v1/presence/{}", address(1)),
        &[],
        "",
    )
    .await;
    assert_eq!(presence.status, 200);

    // The change feed over HTTPS carries a transition.
    let mut feed = client::sse(&rig.api, "/v1/presence/watch", &[]).await;
    assert_eq!(feed.status, 200);
    rig.cover_now(2, "OOF").await;
    loop {
        let event = feed.next().await.expect("an event");
        if event.event == "presence"
            && event.data.contains(&address(2))
            && event.data.contains("\"away\"")
        {
            break;
        }
    }

    // A client that trusts another CA is refused at the handshake.
    let other = authority("Someone else");
    let refused = get_once(rig.api.addr, client(&other.pem(), None), "/readyz").await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("invalid peer certificate")),
        "{refused:?}"
    );

    // Plain HTTP to the TLS port: a clear answer, not a hang.
    let mut plain = TcpStream::connect(rig.api.addr).await.unwrap();
    plain
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(client::DEADLINE, plain.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("use https://"), "{answer}");
    rig.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_clients_it_signed_get_in() {
    let dir = dir("api-mtls");
    let ca = authority("API CA");
    let (cert, key) = issued(&ca, &["localhost"]);
    std::fs::write(dir.join("api-cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("api-key.pem"), &key).unwrap();
    let clients = authority("Presence servers");
    std::fs::write(dir.join("client-ca.pem"), clients.pem()).unwrap();
    let rig = https_rig(&dir, true).await;
    let addr = rig.api.addr;

    let signed = issued(&clients, &["presence.example.test"]);
    let admitted = client(&ca.pem(), Some(&signed));
    eventually(
        "a client with a signed certificate reads /readyz",
        WITHIN,
        || async { get_once(addr, admitted.clone(), "/readyz").await.is_ok() },
    )
    .await;
    let without = get_once(addr, client(&ca.pem(), None), "/readyz").await;
    assert!(without.is_err(), "no certificate, no answer: {without:?}");
    let stranger = issued(&authority("Another CA"), &["presence.example.test"]);
    let foreign = get_once(addr, client(&ca.pem(), Some(&stranger)), "/readyz").await;
    assert!(foreign.is_err(), "a certificate of another CA: {foreign:?}");
    rig.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_a_restart_or_a_dropped_connection() {
    let dir = dir("api-rotate");
    let first_ca = authority("API CA 2026");
    let (cert, key) = issued(&first_ca, &["localhost"]);
    std::fs::write(dir.join("api-cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("api-key.pem"), &key).unwrap();
    let rig = https_rig(&dir, false).await;
    let addr = rig.api.addr;
    let trusts_first = client(&first_ca.pem(), None);
    let mut open = Connection::open(addr, trusts_first.clone()).await.unwrap();
    assert_eq!(open.get("/livez").await, Ok(200));

    // A new certificate from a new CA, written as a renewal would be.
    let second_ca = authority("API CA 2027");
    let (cert, key) = issued(&second_ca, &["localhost"]);
    replace(&dir.join("api-key.pem"), &key);
    replace(&dir.join("api-cert.pem"), &cert);
    let trusts_second = client(&second_ca.pem(), None);
    eventually(
        "new connections get the new certificate",
        WITHIN,
        || async { get_once(addr, trusts_second.clone(), "/livez").await == Ok(200) },
    )
    .await;
    assert!(
        get_once(addr, trusts_first.clone(), "/livez")
            .await
            .is_err()
    );
    assert_eq!(
        open.get("/livez").await,
        Ok(200),
        "the open connection carries on"
    );

    // A key that does not fit its certificate (a half-done renewal) keeps the
    // certificate in use; SIGHUP's reload says which files.
    let (_, stray_key) = issued(&second_ca, &["localhost"]);
    replace(&dir.join("api-key.pem"), &stray_key);
    let error = rig
        .app
        .reload_tls()
        .expect_err("a mismatched key does not load")
        .to_string();
    assert!(
        error.contains("api-cert.pem") && error.contains("api-key.pem"),
        "{error}"
    );
    assert_eq!(
        get_once(addr, trusts_second.clone(), "/livez").await,
        Ok(200)
    );
    rig.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
