//! The transport against live peers on loopback: a bearer token re-read after a 401,
//! and a `503` a server writes on an idle kept-alive connection taken as its answer.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use std::path::Path;

use ews::error::EwsError;
use ews::ops::subscribe;
use ews::soap::{RequestHeader, envelope};
use ews::transport::{Auth, Lane, Route, Transport, TransportConfig, client_tls};
use ews::types::{Mailbox, RequestServerVersion};
use ews_sim::auth::SimAuth;
use ews_sim::{Sim, SimConfig};

fn subscribe_request() -> String {
    let mailbox = Mailbox::parse("user1@example.test").expect("address");
    envelope(
        &RequestHeader {
            server_version: RequestServerVersion::Exchange2016,
            impersonate: Some(&mailbox),
        },
        &subscribe::body(),
    )
}

fn transport(url: &str, auth: Auth) -> Transport {
    let tls = client_tls(
        None,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs"),
    )
    .expect("TLS config");
    Transport::new(
        &TransportConfig {
            url: url.parse().expect("url"),
            auth,
            request_timeout: Duration::from_secs(5),
        },
        tls,
    )
    .expect("transport")
}

#[tokio::test]
async fn a_bearer_token_rewritten_unnoticed_is_read_again_after_a_401() {
    let dir = std::env::temp_dir().join(format!("ews-transport-bearer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ours, valid) = (dir.join("token"), dir.join("valid"));
    std::fs::write(&ours, "token-a\n").unwrap();
    std::fs::write(&valid, "token-a\n").unwrap();
    let sim = Sim::new(SimConfig {
        auth: SimAuth::Bearer {
            token_file: valid.clone(),
        },
        ..SimConfig::default()
    })
    .unwrap()
    .start()
    .await
    .unwrap();
    let client = transport(
        &sim.ews_url(),
        Auth::Bearer {
            token_file: ours.clone(),
        },
    );
    let route = Route::default();
    client
        .call(subscribe_request(), &route, Lane::Normal)
        .await
        .expect("the first token works");
    // Renewed with a token of the same length, and the file's time put back: only a
    // re-read after the refusal can notice.
    let stamp = std::fs::metadata(&ours).unwrap().modified().unwrap();
    std::fs::write(&valid, "token-b\n").unwrap();
    std::fs::write(&ours, "token-b\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&ours)
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    client
        .call(subscribe_request(), &route, Lane::Normal)
        .await
        .expect("re-read after the 401");
    // A token nobody accepts is an authentication error naming the file.
    std::fs::write(&valid, "token-c\n").unwrap();
    let refused = client
        .call(subscribe_request(), &route, Lane::Normal)
        .await
        .expect_err("refused");
    assert!(refused.is_refused_credentials(), "{refused}");
    assert!(refused.to_string().contains("token"), "{refused}");
    assert!(
        !refused.to_string().contains("token-b"),
        "never the token: {refused}"
    );
    sim.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Reads one request (head and Content-Length body) from `stream`.
async fn read_request(stream: &mut tokio::net::TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "client closed");
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if seen.len() >= head_end + 4 + length {
                return;
            }
        }
    }
}

/// Accepts one connection, reads one request and answers it with HTTP 200 and `body`
/// as `text/xml` without a charset; the connection, for more.
async fn answer_once(listener: tokio::net::TcpListener, body: &str) -> tokio::net::TcpStream {
    let (mut stream, _) = listener.accept().await.unwrap();
    read_request(&mut stream).await;
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(answer.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn a_503_written_on_an_idle_connection_is_the_servers_answer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (idle_503_sent, mut wait_for_503) = tokio::sync::mpsc::channel::<()>(1);
    let (first_done, mut wait_for_first) = tokio::sync::mpsc::channel::<()>(1);
    let server = tokio::spawn(async move {
        let body = "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>";
        let mut stream = answer_once(listener, body).await;
        wait_for_first.recv().await.unwrap();
        // Later, out of connection slots: the server says so on the idle connection.
        stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        idle_503_sent.send(()).await.unwrap();
        // Hold the connection open; nothing more is read.
        let mut rest = [0u8; 1024];
        let _ = stream.read(&mut rest).await;
    });
    let client = transport(&format!("http://{addr}/EWS/Exchange.asmx"), Auth::None);
    let first = client
        .call(subscribe_request(), &Route::default(), Lane::Normal)
        .await;
    assert!(
        !matches!(first, Err(EwsError::Transport(_) | EwsError::Timeout(_))),
        "{first:?}"
    );
    first_done.send(()).await.unwrap();
    wait_for_503.recv().await.unwrap();
    let second = client
        .call(subscribe_request(), &Route::default(), Lane::Normal)
        .await;
    assert!(
        matches!(second, Err(EwsError::Unavailable { .. })),
        "the idle 503 is the server's 503: {second:?}"
    );
    server.abort();
}

#[tokio::test]
async fn a_soap_fault_sent_with_http_200_is_an_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let body = "<SOAP:Envelope xmlns:SOAP=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP:Body><SOAP:Fault><faultcode>SOAP:Client</faultcode><faultstring>no impersonation right</faultstring><detail><e:ResponseCode xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">ErrorImpersonateUserDenied</e:ResponseCode></detail></SOAP:Fault></SOAP:Body></SOAP:Envelope>";
        let mut stream = answer_once(listener, body).await;
        let mut rest = [0u8; 1024];
        let _ = stream.read(&mut rest).await;
    });
    let client = transport(&format!("http://{addr}/EWS/Exchange.asmx"), Auth::None);
    let answer = client
        .call(subscribe_request(), &Route::default(), Lane::Normal)
        .await;
    match answer {
        Err(EwsError::Fault(fault)) => assert_eq!(
            fault.status.code,
            ews::response_code::ResponseCode::ErrorImpersonateUserDenied
        ),
        other => panic!("a fault, whatever the status: {other:?}"),
    }
    server.abort();
}
