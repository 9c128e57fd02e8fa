//! A SIP watcher of our own for the tests: SUBSCRIBEs to a presentity through a
//! presence server (RFC 3856), answers every NOTIFY with 200 and hands over the PIDF
//! bodies; it can also PUBLISH a device's own presence for a user, as a phone would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sip::message::{Message, StartLine};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

pub struct Watcher {
    socket: Arc<UdpSocket>,
    server: SocketAddr,
    local: SocketAddr,
    notifies: mpsc::Receiver<String>,
    responses: mpsc::Receiver<Message>,
    /// The last NOTIFY body seen.
    pub last: String,
    next: u32,
}

impl Watcher {
    /// Subscribes to `presentity` (`sip:user1@example.test`) at `server`; returns once the
    /// SUBSCRIBE is accepted.
    pub async fn subscribe(server: SocketAddr, presentity: &str) -> Watcher {
        let socket = Arc::new(
            UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("watcher socket"),
        );
        let local = socket.local_addr().expect("bound");
        let (notify_tx, notifies) = mpsc::channel(256);
        let (response_tx, responses) = mpsc::channel(16);
        tokio::spawn(receive(socket.clone(), notify_tx, response_tx));
        let mut watcher = Watcher {
            socket,
            server,
            local,
            notifies,
            responses,
            last: String::new(),
            next: 0,
        };
        let response = watcher
            .request(
                "SUBSCRIBE",
                presentity,
                &[
                    ("Contact", format!("<sip:watcher@{local}>")),
                    ("Event", "presence".into()),
                    ("Accept", "application/pidf+xml".into()),
                    ("Expires", "600".into()),
                ],
                None,
            )
            .await;
        let status = response.status().unwrap_or(0);
        assert!((200..300).contains(&status), "SUBSCRIBE answered {status}");
        watcher
    }

    /// Publishes a device's presence for `presentity`: a tuple `tuple_id`, open, with
    /// `extra` inside the document (a person element, say). Returns the SIP-ETag.
    pub async fn publish_device(
        &mut self,
        presentity: &str,
        tuple_id: &str,
        extra: &str,
    ) -> String {
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="{presentity}">
 <tuple id="{tuple_id}"><status><basic>open</basic></status><contact>sip:phone@127.0.0.1</contact></tuple>
 {extra}
</presence>
"#
        );
        let response = self
            .request(
                "PUBLISH",
                presentity,
                &[("Event", "presence".into()), ("Expires", "600".into())],
                Some(body),
            )
            .await;
        assert_eq!(response.status(), Some(200), "device PUBLISH: {response:?}");
        response.get("SIP-ETag").expect("a SIP-ETag").to_owned()
    }

    /// Sends a request from the watcher's socket and waits for its final response.
    pub async fn request(
        &mut self,
        method: &str,
        uri: &str,
        headers: &[(&str, String)],
        pidf: Option<String>,
    ) -> Message {
        self.next += 1;
        let n = self.next;
        let mut request = sip::message::Request::new(method, uri)
            .header(
                "Via",
                format!(
                    "SIP/2.0/UDP {};branch=z9hG4bK-watcher-{n};rport",
                    self.local
                ),
            )
            .header("Max-Forwards", "70")
            .header("From", format!("<sip:watcher@example.test>;tag=w{n}"))
            .header("To", format!("<{uri}>"))
            .header("Call-ID", format!("watcher-{n}-{}", self.local.port()))
            .header("CSeq", format!("{n} {method}"));
        for (name, value) in headers {
            request = request.header(name, value.clone());
        }
        if let Some(body) = pidf {
            request = request.body("application/pidf+xml", body.into_bytes());
        }
        self.socket
            .send_to(&request.encode(), self.server)
            .await
            .expect("send");
        loop {
            let response = tokio::time::timeout(Duration::from_secs(5), self.responses.recv())
                .await
                .unwrap_or_else(|_| panic!("no answer to the watcher's {method}"))
                .expect("receiver running");
            if response.status().is_some_and(|s| s >= 200)
                && response.top_branch() == Some(&format!("z9hG4bK-watcher-{n}"))
            {
                return response;
            }
        }
    }

    /// Waits (`within` at most) for a NOTIFY whose body satisfies `check`; returns it.
    pub async fn until(
        &mut self,
        what: &str,
        within: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        if check(&self.last) {
            return self.last.clone();
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.notifies.recv()).await {
                Ok(Some(body)) => {
                    self.last = body;
                    if check(&self.last) {
                        return self.last.clone();
                    }
                }
                _ => panic!(
                    "no NOTIFY {what} within {within:?}; the last body:\n{}",
                    self.last
                ),
            }
        }
    }
}

/// Answers NOTIFYs with 200 and passes their bodies on; passes responses on.
async fn receive(
    socket: Arc<UdpSocket>,
    notifies: mpsc::Sender<String>,
    responses: mpsc::Sender<Message>,
) {
    let mut buffer = vec![0u8; 65536];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buffer).await else {
            return;
        };
        let Ok(message) = Message::parse(&buffer[..len]) else {
            continue;
        };
        match &message.start {
            StartLine::Request { method, .. } => {
                let mut ok = String::from("SIP/2.0 200 OK\r\n");
                for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
                    for value in message.all(name) {
                        ok.push_str(&format!("{name}: {value}\r\n"));
                    }
                }
                ok.push_str("Content-Length: 0\r\n\r\n");
                let _ = socket.send_to(ok.as_bytes(), from).await;
                if method == "NOTIFY" {
                    let body = String::from_utf8_lossy(&message.body).into_owned();
                    if notifies.send(body).await.is_err() {
                        return;
                    }
                }
            }
            StartLine::Response { .. } => {
                let _ = responses.send(message).await;
            }
        }
    }
}
