//! The simulator's other EWS operations and its control API: free/busy against the
//! ground truth (in UTC and in another zone), unsupported operations, control-API
//! validation, and deterministic churn.

mod support;

use ews::ops::get_user_availability::{self, BusyType};
use ews::response_code::ResponseCode;
use ews::stream::Response;
use ews_sim::rng::Rng;
use ews_sim::{Sim, calendar_gen, churn};
use jiff::Timestamp;
use serde_json::{Value, json};
use support::client;
use support::sim::{self, config, mailbox, start};

#[tokio::test]
async fn availability_matches_the_ground_truth() {
    let (sim, target) = start(config()).await;
    // The simulator generates the current week's calendars: ask for that week.
    let week = calendar_gen::week_start(Timestamp::now());
    let at = |secs: i64| Timestamp::from_second(week + secs).unwrap();
    let (start_at, end_at) = (at(0), at(7 * 86_400));
    client::control(
        &target,
        "POST",
        "/mailboxes/user2@example.test/items",
        Some(json!({
            "start": at(86_400 + 13 * 3600).to_string(),
            "end": at(86_400 + 14 * 3600 + 1800).to_string(),
            "busy_type": "OOF",
        })),
    )
    .await;
    let ghost = ews::types::Mailbox::parse("nobody@example.test").unwrap();
    let body =
        get_user_availability::body(&[mailbox(2), ghost, mailbox(3)], start_at, end_at).unwrap();
    let reply = client::ews(&target, &[], sim::request(None, &body)).await;
    let Response::GetUserAvailability(r) = reply.ews() else {
        panic!()
    };
    assert_eq!(r.mailboxes.len(), 3);
    assert_eq!(
        r.mailboxes[1].status.code,
        ResponseCode::ErrorMailRecipientNotFound
    );
    for (index, n) in [(0, 2), (2, 3)] {
        let truth = client::control(
            &target,
            "GET",
            &format!("/mailboxes/user{n}@example.test/items"),
            None,
        )
        .await
        .json();
        let mut expected: Vec<(String, String, String)> = truth
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| {
                let time = |key: &str| i[key].as_str().unwrap().parse::<Timestamp>().unwrap();
                time("start") < end_at && time("end") > start_at
            })
            .map(|i| {
                (
                    i["start"].as_str().unwrap().into(),
                    i["end"].as_str().unwrap().into(),
                    i["busy_type"].as_str().unwrap().into(),
                )
            })
            .collect();
        let mut got: Vec<(String, String, String)> = r.mailboxes[index]
            .events
            .iter()
            .map(|e| {
                let utc = |t: &ews::types::EwsDateTime| {
                    t.to_timestamp_assuming_utc().unwrap().to_string()
                };
                (utc(&e.start), utc(&e.end), e.busy_type.as_str().to_owned())
            })
            .collect();
        expected.sort();
        got.sort();
        assert!(
            !expected.is_empty(),
            "user{n}: the generated week has items to compare"
        );
        assert_eq!(got, expected, "user{n}");
    }
    assert!(
        r.mailboxes[0]
            .events
            .iter()
            .any(|e| e.busy_type == BusyType::Oof)
    );
    sim.stop().await;
}

#[tokio::test]
async fn availability_answers_in_the_requested_zone() {
    let (sim, target) = start(config()).await;
    client::control(
        &target,
        "POST",
        "/mailboxes/user4@example.test/items",
        Some(json!({"start": "2026-11-25T09:00:00Z", "end": "2026-11-25T10:00:00Z", "busy_type": "Busy", "subject": "zone"})),
    )
    .await;
    // W. Europe in November: UTC+1 (bias -60), summer time from the last Sunday of March.
    let utc_zone = "<t:TimeZone><t:Bias>0</t:Bias><t:StandardTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>1</t:DayOrder><t:Month>1</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime><t:DaylightTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>1</t:DayOrder><t:Month>1</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone>";
    let berlin = "<t:TimeZone><t:Bias>-60</t:Bias><t:StandardTime><t:Bias>0</t:Bias><t:Time>03:00:00</t:Time><t:DayOrder>5</t:DayOrder><t:Month>10</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime><t:DaylightTime><t:Bias>-60</t:Bias><t:Time>02:00:00</t:Time><t:DayOrder>5</t:DayOrder><t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone>";
    let body = get_user_availability::body(
        &[mailbox(4)],
        "2026-11-25T00:00:00Z".parse().unwrap(),
        "2026-11-26T00:00:00Z".parse().unwrap(),
    )
    .unwrap()
    .replace(utc_zone, berlin)
    .replace("2026-11-25T00:00:00<", "2026-11-25T01:00:00<")
    .replace("2026-11-26T00:00:00<", "2026-11-26T01:00:00<");
    let reply = client::ews(&target, &[], sim::request(None, &body)).await;
    let Response::GetUserAvailability(r) = reply.ews() else {
        panic!("{}", String::from_utf8_lossy(&reply.body))
    };
    let ours = r.mailboxes[0]
        .events
        .iter()
        .find(|e| e.start.to_string() == "2026-11-25T10:00:00");
    let ours =
        ours.unwrap_or_else(|| panic!("no 10:00 local event in {:?}", r.mailboxes[0].events));
    assert_eq!(ours.end.to_string(), "2026-11-25T11:00:00");
    sim.stop().await;
}

#[tokio::test]
async fn more_than_100_mailboxes_and_unknown_operations_are_faults() {
    let (sim, target) = start(config()).await;
    let hundred: Vec<_> = (1..=100).map(mailbox).collect();
    let body = get_user_availability::body(&hundred, "2026-11-25T00:00:00Z".parse().unwrap(), "2026-11-26T00:00:00Z".parse().unwrap())
        .unwrap()
        .replace("</m:MailboxDataArray>", "<t:MailboxData><t:Email><t:Address>user1@example.test</t:Address></t:Email><t:AttendeeType>Required</t:AttendeeType></t:MailboxData></m:MailboxDataArray>");
    let reply = client::ews(&target, &[], sim::request(None, &body)).await;
    assert_eq!(reply.status, 500);
    let find = "<m:FindItem xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" Traversal=\"Shallow\"/>";
    let reply = client::ews(&target, &[], sim::request(Some(&mailbox(1)), find)).await;
    assert_eq!(reply.status, 500);
    let Response::Fault(f) = reply.ews() else {
        panic!()
    };
    assert_eq!(f.status.code, ResponseCode::ErrorInvalidRequest);
    let garbage = client::ews(&target, &[], "<not-soap/>".to_owned()).await;
    assert_eq!(garbage.status, 500);
    sim.stop().await;
}

#[tokio::test]
async fn control_api_names_bad_fields() {
    let (sim, target) = start(config()).await;
    /// (method, path, body, expected status, expected field)
    type Case<'a> = (&'a str, &'a str, Option<Value>, u16, Option<&'a str>);
    let cases: [Case<'_>; 8] = [
        (
            "POST",
            "/mailboxes/user1@example.test/items",
            Some(
                json!({"start": "2026-11-25T10:00:00Z", "end": "2026-11-25T11:00:00Z", "busy_type": "Maybe"}),
            ),
            400,
            Some("busy_type"),
        ),
        (
            "POST",
            "/mailboxes/user1@example.test/items",
            Some(json!({"start": "tomorrow", "end": "2026-11-25T11:00:00Z", "busy_type": "Busy"})),
            400,
            Some("start"),
        ),
        (
            "POST",
            "/mailboxes/user1@example.test/items",
            Some(
                json!({"start": "2026-11-25T12:00:00Z", "end": "2026-11-25T11:00:00Z", "busy_type": "Busy"}),
            ),
            400,
            Some("end"),
        ),
        (
            "POST",
            "/mailboxes/nobody@example.test/items",
            Some(json!({})),
            404,
            Some("mailbox"),
        ),
        (
            "PUT",
            "/mailboxes/user1@example.test/oof",
            Some(json!({"state": "Scheduled", "start": "2026-11-25T12:00:00Z"})),
            400,
            Some("end"),
        ),
        (
            "POST",
            "/faults",
            Some(json!({"kind": "meteor-strike"})),
            400,
            Some("kind"),
        ),
        (
            "POST",
            "/faults",
            Some(json!({"kind": "server-busy", "count": -1})),
            400,
            Some("count"),
        ),
        (
            "DELETE",
            "/mailboxes/user1@example.test/items/not-an-id",
            None,
            404,
            Some("item"),
        ),
    ];
    for (method, path, body, status, field) in cases {
        let reply = client::control(&target, method, path, body).await;
        assert_eq!(
            reply.status,
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["field"].as_str(), field, "{method} {path}");
        assert!(reply.json()["error"].is_string());
    }
    let not_json = client::request(&target, "POST", "/sim/faults", &[], "{kind").await;
    assert_eq!(
        (not_json.status, not_json.json()["field"].as_str()),
        (400, Some("body"))
    );
    let truth = client::control(
        &target,
        "GET",
        "/mailboxes/user1%40example.test/truth?at=2026-11-25T03:00:00Z",
        None,
    )
    .await;
    assert_eq!(truth.status, 200);
    assert_eq!(truth.json()["mailbox"], "user1@example.test");
    assert!(
        ["available", "in-a-meeting", "away"]
            .contains(&truth.json()["availability"].as_str().unwrap())
    );
    sim.stop().await;
}

#[test]
fn churn_is_deterministic_for_a_seed() {
    let run = |seed| {
        let mut cfg = config();
        cfg.seed = seed;
        let at: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let sim = Sim::new_at(cfg, at).unwrap();
        let mut rng = Rng::new(seed);
        for _ in 0..500 {
            churn::change(&sim, &mut rng, at.as_second());
        }
        (0..sim.directory.len())
            .map(|m| {
                sim.directory.with(m, |c| {
                    (c.items_between(i64::MIN / 2, i64::MAX / 2), c.oof.clone())
                })
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}
