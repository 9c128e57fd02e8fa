//! Who may do what, and where requests go: Basic authentication, TLS, impersonation
//! versus delegate access, the per-account streaming-connection limit, and affinity
//! routing across backend servers.

mod support;

use std::sync::Arc;

use base64::Engine;
use ews::ops::{get_user_oof_settings, subscribe};
use ews::response_code::ResponseCode;
use ews::stream::Response;
use support::client::{self, Next, Target};
use support::sim::{self, config, mailbox, open_stream, start, subscribe_mailbox};

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn basic_authentication_is_required_when_configured() {
    let mut cfg = config();
    cfg.auth = ews_sim::auth::SimAuth::Basic {
        password: "s3cret".into(),
    };
    let (sim, target) = start(cfg).await;
    let body = sim::request(Some(&mailbox(1)), &subscribe::body());
    let denied = client::ews(&target, &[], body.clone()).await;
    assert_eq!(denied.status, 401);
    assert!(
        denied
            .headers
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let wrong = basic("svc@example.test", "guess");
    assert_eq!(
        client::ews(&target, &[("Authorization", &wrong)], body.clone())
            .await
            .status,
        401
    );
    let right = basic("SVC@example.test", "s3cret");
    let ok = client::ews(&target, &[("Authorization", &right)], body).await;
    assert_eq!(ok.status, 200);
    assert!(matches!(ok.ews(), Response::Subscribe(r) if r.status.code.is_success()));
    sim.stop().await;
}

#[tokio::test]
async fn serves_https_with_the_given_certificate() {
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("ews-presence-sim-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ca.cert.pem()).unwrap();
    std::fs::write(&key, ca.signing_key.serialize_pem()).unwrap();
    let mut cfg = config();
    cfg.tls = Some((cert, key));
    let (sim, plain) = start(cfg).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let target = Target {
        addr: plain.addr,
        tls: Some(Arc::new(tls)),
    };
    let (id, _) = subscribe_mailbox(&target, 3, &[]).await;
    let mut stream = open_stream(&target, &[id], 1, &[]).await;
    assert!(matches!(stream.next().await, Next::Frame(_)));
    sim.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn impersonation_is_needed_for_other_mailboxes() {
    let (sim, target) = start(config()).await;
    let code = |reply: client::Reply| match reply.ews() {
        Response::Subscribe(r) => r.status.code,
        other => panic!("{other:?}"),
    };
    // The service account has no mailbox of its own.
    let own = client::ews(&target, &[], sim::request(None, &subscribe::body())).await;
    assert_eq!(code(own), ResponseCode::ErrorNonExistentMailbox);
    // Delegate access: naming another user's calendar without impersonating.
    let delegate_body = subscribe::body().replace(
        "<t:DistinguishedFolderId Id=\"calendar\"/>",
        "<t:DistinguishedFolderId Id=\"calendar\"><t:Mailbox><t:EmailAddress>user2@example.test</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>",
    );
    let delegate = client::ews(&target, &[], sim::request(None, &delegate_body)).await;
    assert_eq!(
        code(delegate),
        ResponseCode::ErrorSubscriptionDelegateAccessNotSupported
    );
    let ghost = ews::types::Mailbox::parse("user999@example.test").unwrap();
    let unknown = client::ews(&target, &[], sim::request(Some(&ghost), &subscribe::body())).await;
    assert_eq!(code(unknown), ResponseCode::ErrorNonExistentMailbox);
    // Reading someone else's automatic replies is a SOAP fault, as on Exchange.
    let not_owner = client::ews(
        &target,
        &[],
        sim::request(None, &get_user_oof_settings::body(&mailbox(1))),
    )
    .await;
    assert_eq!(not_owner.status, 500);
    let Response::Fault(f) = not_owner.ews() else {
        panic!()
    };
    assert_eq!(f.fault_code, "soap:Client");
    assert!(f.fault_string.contains("not mailbox owner"));
    sim.stop().await;
}

#[tokio::test]
async fn streaming_connections_are_limited_per_account() {
    let mut cfg = config();
    cfg.connection_limit = 2;
    let (sim, target) = start(cfg).await;
    let (a, _) = subscribe_mailbox(&target, 1, &[]).await;
    let (b, _) = subscribe_mailbox(&target, 2, &[]).await;
    let (c, _) = subscribe_mailbox(&target, 3, &[]).await;
    let mut first = open_stream(&target, &[a], 30, &[]).await;
    let mut second = open_stream(&target, &[b], 30, &[]).await;
    assert!(matches!(first.next().await, Next::Frame(_)));
    assert!(matches!(second.next().await, Next::Frame(_)));
    let mut third = open_stream(&target, std::slice::from_ref(&c), 30, &[]).await;
    let Next::Frame(f) = third.next().await else {
        panic!()
    };
    let Response::GetStreamingEvents(r) = f.response else {
        panic!()
    };
    assert_eq!(r.status.code, ResponseCode::ErrorExceededConnectionCount);
    drop(first);
    // Once a connection closes its slot frees up.
    let deadline = tokio::time::Instant::now() + client::DEADLINE;
    loop {
        let mut retry = open_stream(&target, std::slice::from_ref(&c), 30, &[]).await;
        let Next::Frame(f) = retry.next().await else {
            panic!()
        };
        let Response::GetStreamingEvents(r) = f.response else {
            panic!()
        };
        if r.is_heartbeat() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sim.stop().await;
}

#[tokio::test]
async fn affinity_routes_a_group_to_its_anchors_backend() {
    let mut cfg = config();
    cfg.backends = 3;
    let (sim, target) = start(cfg).await;
    // user1, user2, user3 live on three different backends; user1 anchors the group.
    let anchor = [
        ("X-AnchorMailbox", "user1@example.test"),
        ("X-PreferServerAffinity", "true"),
    ];
    let (first, reply) = subscribe_mailbox(&target, 1, &anchor).await;
    let set_cookie = reply
        .headers
        .get("set-cookie")
        .expect("affinity cookie")
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(
        cookie.starts_with("X-BackEndOverrideCookie=mbx01.example.test~"),
        "{cookie}"
    );
    let with_cookie = [anchor[0], anchor[1], ("Cookie", cookie.as_str())];
    let mut ids = vec![first];
    for n in [2, 3] {
        let (id, reply) = subscribe_mailbox(&target, n, &with_cookie).await;
        assert!(
            reply.headers.get("set-cookie").is_none(),
            "the cookie is set once, by the anchor"
        );
        ids.push(id);
    }
    let mut grouped = open_stream(&target, &ids, 1, &with_cookie).await;
    let Next::Frame(f) = grouped.next().await else {
        panic!()
    };
    assert!(matches!(f.response, Response::GetStreamingEvents(r) if r.is_heartbeat()));
    // Without affinity the request lands on user2's backend, which hosts none of them.
    let elsewhere = [("X-AnchorMailbox", "user2@example.test")];
    let mut lost = open_stream(&target, &ids, 1, &elsewhere).await;
    let Next::Frame(f) = lost.next().await else {
        panic!()
    };
    let Response::GetStreamingEvents(r) = f.response else {
        panic!()
    };
    assert_eq!(r.status.code, ResponseCode::ErrorSubscriptionNotFound);
    assert_eq!(r.error_subscription_ids, ids);
    sim.stop().await;
}
