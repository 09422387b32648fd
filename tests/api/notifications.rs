//! E-mail to reporters (SPEC §12), sent to a real SMTP server (aiosmtpd): what is told, in which
//! language, threaded how; confirming and rejecting from the link; retries when the mail server
//! is down; each message once with two instances; reminders; the desk's queue of unanswered
//! resolutions.

use std::time::Duration as StdDuration;

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const CONFIRMATION_URL: &str = "https://desk.example/confirm?token={token}";

/// Settings of a server that mails through `mail`, quickly.
fn mailing(mail: &MailServer) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_URL", mail.url()),
        ("MAIL_FROM", "服务台 <desk@hospital.example>".into()),
        ("CONFIRMATION_URL", CONFIRMATION_URL.into()),
        ("WEBHOOK_POLL_INTERVAL", "50ms".into()),
        ("NOTIFICATION_RETRY_BASE", "200ms".into()),
    ]
}

async fn spawn_mailing(settings: &[(&'static str, String)]) -> TestApp {
    let extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(&extra).await
}

/// What the desk records when Dr. Wang, who gave his address, calls: a classified fault of the
/// cast's organisation; `fields` add to or replace these.
fn wang_reports(c: &Cast, fields: Value) -> Value {
    let mut body = json!({
        "title": "收费模块无法录入",
        "subcategory": "module_input_blocked",
        "customer_id": c.customer,
        "reporter": {"name": "王医生", "email": "wang@hospital.example"}
    });
    for (field, value) in fields.as_object().unwrap() {
        body[field] = value.clone();
    }
    body
}

/// Dr. Wang's report, taken and resolved by the desk.
async fn resolved_for_wang(app: &TestApp, c: &Cast) -> Value {
    let incident = app
        .create_incident(&c.desk, wang_reports(c, json!({})))
        .await;
    app.act_ok(&c.desk, &incident["id"], "accept", json!({}))
        .await;
    app.act_ok(&c.desk, &incident["id"], "resolve", resolution())
        .await
}

/// The token of the confirmation link in `mail`.
fn token_of(mail: &Mail) -> String {
    let start = mail
        .plain
        .find("token=")
        .unwrap_or_else(|| panic!("no confirmation link in {}", mail.plain))
        + "token=".len();
    mail.plain[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

async fn notifications(app: &TestApp, token: &str, incident: &Value) -> Vec<Value> {
    let page = expect_ok(
        app.get(
            &format!("/api/v1/incidents/{}/notifications", incident["id"]),
            token,
        )
        .await,
    )
    .await;
    page["items"].as_array().unwrap().clone()
}

/// Waits until every message about `incident` has left `pending`; returns them.
async fn settled(app: &TestApp, token: &str, incident: &Value, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        let items = notifications(app, token, incident).await;
        if items.len() >= count && items.iter().all(|n| n["status"] != "pending") {
            return items;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!(
        "messages did not settle: {:?}",
        notifications(app, token, incident).await
    );
}

async fn confirm_by_mail(app: &TestApp, body: Value) -> reqwest::Response {
    app.send(
        reqwest::Method::POST,
        "/api/v1/confirmations",
        None,
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_reporter_is_told_of_each_step_in_one_thread_and_confirms_from_the_link() {
    let mail = MailServer::start();
    let app = spawn_mailing(&mailing(&mail)).await;
    let c = app.cast().await;
    let incident = app
        .create_incident(
            &c.desk,
            wang_reports(&c, json!({"title": "收费系统无法登录"})),
        )
        .await;
    let number = incident["number"].as_str().unwrap().to_owned();
    let created = &mail.wait_for(1).await[0];
    assert_eq!(
        created.subject,
        format!("[{number}] 事件已登记：收费系统无法登录")
    );
    assert!(created.rcpt_to.contains("wang@hospital.example"));
    assert!(created.from.contains("desk@hospital.example"));
    assert_eq!(created.message_id, format!("<{number}@hospital.example>"));
    assert!(created.plain.contains("计划解决时间"), "{}", created.plain);
    assert!(created.html.contains(&number));
    assert!(created.in_reply_to.is_none());

    let id = &incident["id"];
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    // Internal notes are never mailed; public ones by the desk are.
    for (visibility, body) in [
        ("internal", "内部：怀疑补丁问题"),
        ("public", "工程师已远程处理"),
    ] {
        let note = app
            .post(
                &format!("/api/v1/incidents/{id}/notes"),
                &c.desk,
                json!({"visibility": visibility, "body": body}),
            )
            .await;
        expect_created(note).await;
    }
    app.act_ok(&c.desk, id, "resolve", resolution()).await;
    let messages = mail.wait_for(3).await;
    let note = &messages[1];
    assert!(note.subject.contains("服务台留言"), "{}", note.subject);
    assert!(note.plain.contains("工程师已远程处理"));
    assert!(!messages.iter().any(|m| m.plain.contains("内部")));
    let resolved = &messages[2];
    assert!(resolved.subject.contains("事件已解决，请确认"));
    assert!(resolved.plain.contains("重新部署补丁"));
    // Every later message names the first, so mail clients show one conversation.
    for later in [note, resolved] {
        assert_eq!(
            later.in_reply_to.as_deref(),
            Some(created.message_id.as_str())
        );
        assert_eq!(
            later.references.as_deref(),
            Some(created.message_id.as_str())
        );
        assert_ne!(later.message_id, created.message_id);
    }
    let token = token_of(resolved);
    assert!(
        resolved
            .html
            .contains(&format!("https://desk.example/confirm?token={token}"))
    );

    // The desk sees the unanswered resolution in its queue of calls.
    let queue = expect_ok(
        app.get("/api/v1/incidents?awaiting_confirmation=true", &c.desk)
            .await,
    )
    .await;
    assert_eq!(pluck(&queue["items"], "id"), [id]);

    let answer = confirm_by_mail(&app, json!({"token": token, "decision": "confirm"})).await;
    let answer = expect_ok(answer).await;
    assert_eq!(answer["decision"], "confirm");
    assert_eq!(answer["number"], number);
    assert_eq!(answer["status"], "resolved");
    let after = expect_ok(app.get(&format!("/api/v1/incidents/{id}"), &c.desk).await).await;
    assert!(after["user_confirmed_at"].is_string());
    let history = expect_ok(
        app.get(&format!("/api/v1/incidents/{id}/history"), &c.desk)
            .await,
    )
    .await;
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "confirm" && e["comment"] == "confirmed by email"),
        "{history}"
    );
    let queue = expect_ok(
        app.get("/api/v1/incidents?awaiting_confirmation=true", &c.desk)
            .await,
    )
    .await;
    assert_eq!(queue["items"], json!([]));

    // The link is spent.
    let again = confirm_by_mail(
        &app,
        json!({"token": token, "decision": "reject", "reason": "x"}),
    );
    expect_problem(again.await, "confirmation_expired").await;

    app.act_ok(&c.desk, id, "close", json!({"closure_code": "resolved"}))
        .await;
    let closed = &mail.wait_for(4).await[3];
    assert!(closed.subject.contains("事件已关闭"));
    assert!(closed.plain.contains("已解决"));

    let log = settled(&app, &c.desk, &incident, 4).await;
    let kinds: Vec<&str> = log.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "note", "resolved", "closed"]);
    for entry in &log {
        assert_eq!(entry["status"], "sent", "{entry}");
        assert_eq!(entry["to"], "wang@hospital.example");
        assert_eq!(entry["attempts"], 1);
        assert!(entry["sent_at"].is_string());
    }
    // Customers and strangers do not read the delivery log.
    let refused = app
        .get(&format!("/api/v1/incidents/{id}/notifications"), &c.portal)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    expect_problem(
        app.get("/api/v1/incidents/999999/notifications", &c.desk)
            .await,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_customer_user_is_written_to_at_its_own_address_in_its_organisations_language() {
    let mail = MailServer::start();
    let app = spawn_mailing(&mailing(&mail)).await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "INTL").await;
    let changed = app
        .patch(
            &format!("/api/v1/customers/{customer}"),
            &admin,
            json!({"locale": "en"}),
        )
        .await;
    assert_eq!(expect_ok(changed).await["locale"], "en");
    let (portal_id, portal) = app
        .create_user(&admin, "anna", &["customer"], Some(customer))
        .await;
    let user = app
        .patch(
            &format!("/api/v1/users/{portal_id}"),
            &admin,
            json!({"email": "Anna@Clinic.example"}),
        )
        .await;
    assert_eq!(expect_ok(user).await["email"], "Anna@Clinic.example");
    // Addresses are one mailbox whatever their case.
    let (other_id, _) = app
        .create_user(&admin, "bob", &["customer"], Some(customer))
        .await;
    let taken = app
        .patch(
            &format!("/api/v1/users/{other_id}"),
            &admin,
            json!({"email": "anna@clinic.example"}),
        )
        .await;
    expect_problem(taken, "already_exists").await;
    let bad = app
        .patch(
            &format!("/api/v1/users/{other_id}"),
            &admin,
            json!({"email": "not an address"}),
        )
        .await;
    assert_eq!(
        error_fields(&expect_problem(bad, "validation_failed").await),
        ["email"]
    );

    let incident = app
        .create_incident(&portal, json!({"title": "Printer offline"}))
        .await;
    let created = &mail.wait_for(1).await[0];
    assert!(created.rcpt_to.contains("Anna@Clinic.example"));
    assert_eq!(
        created.subject,
        format!(
            "[{}] Incident recorded: Printer offline",
            incident["number"].as_str().unwrap()
        )
    );
    assert!(created.plain.contains("Due by"), "{}", created.plain);
    assert!(created.html.contains("lang=\"en\""));
    // The customer's own public note is not mailed back to it.
    let note = app
        .post(
            &format!("/api/v1/incidents/{}/notes", incident["id"]),
            &portal,
            json!({"visibility": "public", "body": "Still offline"}),
        )
        .await;
    expect_created(note).await;
    let c = app.cast().await;
    let log = settled(&app, &c.desk, &incident, 1).await;
    assert_eq!(log.len(), 1, "{log:?}");
}

#[tokio::test]
async fn without_a_mail_server_messages_are_recorded_as_skipped() {
    let app = TestApp::spawn_with(&[("WEBHOOK_POLL_INTERVAL", "50ms")]).await;
    let c = app.cast().await;
    let incident = app
        .create_incident(
            &c.desk,
            json!({"title": "扫描仪无法连接", "customer_id": c.customer,
                   "reporter": {"name": "李护士", "email": "li@hospital.example"}}),
        )
        .await;
    let log = settled(&app, &c.desk, &incident, 1).await;
    assert_eq!(log[0]["kind"], "created");
    assert_eq!(log[0]["status"], "skipped");
    assert_eq!(log[0]["attempts"], 0);
    assert!(log[0]["last_error"].as_str().unwrap().contains("SMTP_URL"));
    // A reporter without an address is not written to at all.
    let silent = app
        .create_incident(
            &c.desk,
            json!({"title": "无邮箱的来电", "customer_id": c.customer}),
        )
        .await;
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(
        notifications(&app, &c.desk, &silent).await,
        Vec::<Value>::new()
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("incident_desk_notifications{kind=\"created\",status=\"skipped\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_message_the_mail_server_refused_is_retried_until_it_is_sent() {
    let port = free_port();
    let mut settings = vec![
        ("SMTP_URL", format!("smtp://127.0.0.1:{port}")),
        ("WEBHOOK_POLL_INTERVAL", "50ms".into()),
        ("NOTIFICATION_RETRY_BASE", "300ms".into()),
        ("NOTIFICATION_MAX_ATTEMPTS", "20".into()),
    ];
    let app = spawn_mailing(&settings).await;
    let c = app.cast().await;
    let incident = app
        .create_incident(
            &c.desk,
            json!({"title": "网络中断", "customer_id": c.customer,
                   "reporter": {"name": "赵工", "email": "zhao@hospital.example"}}),
        )
        .await;
    // Nothing listens: the attempt fails and is scheduled again.
    let mut failed = None;
    for _ in 0..100 {
        let log = notifications(&app, &c.desk, &incident).await;
        if log[0]["attempts"].as_i64().unwrap() >= 1 {
            failed = Some(log[0].clone());
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let failed = failed.expect("a failed attempt");
    assert_eq!(failed["status"], "pending");
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("mail server")
    );
    assert!(failed["sent_at"].is_null());

    let mail = MailServer::start_on(port);
    let received = mail.wait_for(1).await;
    assert!(received[0].rcpt_to.contains("zhao@hospital.example"));
    let log = settled(&app, &c.desk, &incident, 1).await;
    assert_eq!(log[0]["status"], "sent");
    assert!(log[0]["attempts"].as_i64().unwrap() >= 2);
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert_eq!(mail.messages().len(), 1, "sent once");

    // With one attempt allowed and no server, a message ends as failed.
    drop(mail);
    settings[3] = ("NOTIFICATION_MAX_ATTEMPTS", "1".into());
    let strict = spawn_mailing(&settings).await;
    let c = strict.cast().await;
    let incident = strict
        .create_incident(
            &c.desk,
            json!({"title": "网络中断", "customer_id": c.customer,
                   "reporter": {"name": "赵工", "email": "zhao@hospital.example"}}),
        )
        .await;
    let log = settled(&strict, &c.desk, &incident, 1).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["attempts"], 1);
}

#[tokio::test]
async fn two_instances_send_each_message_once() {
    let mail = MailServer::start();
    let settings = mailing(&mail);
    let first = spawn_mailing(&settings).await;
    let extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let second = TestApp::spawn_on(first.database.clone(), &extra).await;
    let c = first.cast().await;
    let mut numbers = Vec::new();
    for n in 0..12 {
        let incident = first
            .create_incident(
                &c.desk,
                wang_reports(&c, json!({"title": format!("批量故障 {n}")})),
            )
            .await;
        numbers.push(incident["number"].as_str().unwrap().to_owned());
    }
    mail.wait_for(12).await;
    tokio::time::sleep(StdDuration::from_millis(800)).await;
    let mut subjects: Vec<String> = mail.messages().into_iter().map(|m| m.subject).collect();
    subjects.sort();
    assert_eq!(subjects.len(), 12, "{subjects:?}");
    subjects.dedup();
    assert_eq!(subjects.len(), 12, "a message went twice");
    std::mem::forget(second); // `first` drops the shared database.
}

#[tokio::test]
async fn an_unanswered_resolution_is_recalled_three_times_at_most() {
    let mail = MailServer::start();
    let mut settings = mailing(&mail);
    settings.push(("CONFIRMATION_REMINDER_AFTER", "1h".into()));
    settings.push(("SLA_SCAN_INTERVAL_SECS", "100ms".into()));
    let app = spawn_mailing(&settings).await;
    let c = app.cast().await;
    let incident = resolved_for_wang(&app, &c).await;
    let id = &incident["id"];
    mail.wait_for(2).await;
    // Not yet an hour: no reminder.
    app.clock.advance(Duration::minutes(59));
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert_eq!(mail.messages().len(), 2);
    for n in 1..=3 {
        app.clock.advance(Duration::minutes(61));
        let reminder = &mail.wait_for(2 + n).await[1 + n];
        assert!(reminder.subject.contains("提醒"), "{}", reminder.subject);
        assert!(
            reminder.plain.contains(&format!("第 {n} 次提醒")),
            "{}",
            reminder.plain
        );
        assert!(reminder.plain.contains("token="));
    }
    app.clock.advance(Duration::hours(5));
    tokio::time::sleep(StdDuration::from_millis(600)).await;
    assert_eq!(mail.messages().len(), 5, "three reminders at most");
    let log = settled(&app, &c.desk, &incident, 5).await;
    let reminders = log
        .iter()
        .filter(|n| n["kind"] == "confirmation_reminder")
        .count();
    assert_eq!(reminders, 3);

    // Each reminder carries a working link; rejecting through it puts the incident back into
    // work, recorded as the reporter's answer by e-mail.
    let token = token_of(&mail.messages()[4]);
    let missing_reason = confirm_by_mail(&app, json!({"token": token, "decision": "reject"})).await;
    assert_eq!(
        error_fields(&expect_problem(missing_reason, "validation_failed").await),
        ["reason"]
    );
    let answer = confirm_by_mail(
        &app,
        json!({"token": token, "decision": "reject", "reason": "还是无法录入"}),
    )
    .await;
    assert_eq!(expect_ok(answer).await["status"], "in_progress");
    let history = expect_ok(
        app.get(&format!("/api/v1/incidents/{id}/history"), &c.desk)
            .await,
    )
    .await;
    assert!(
        history.as_array().unwrap().iter().any(|e| {
            e["action"] == "reject-resolution" && e["comment"] == "rejected by email: 还是无法录入"
        }),
        "{history}"
    );
    // A new resolution asks again with a new link; the old one stays spent.
    app.act_ok(&c.desk, id, "resolve", resolution()).await;
    let fresh = token_of(&mail.wait_for(6).await[5]);
    assert_ne!(fresh, token);
    let old = confirm_by_mail(&app, json!({"token": token, "decision": "confirm"})).await;
    expect_problem(old, "confirmation_expired").await;
}

#[tokio::test]
async fn forged_expired_and_guessed_tokens_are_refused() {
    let mail = MailServer::start();
    let app = spawn_mailing(&mailing(&mail)).await;
    let c = app.cast().await;
    let incident = resolved_for_wang(&app, &c).await;
    let id = &incident["id"];
    let token = token_of(&mail.wait_for(2).await[1]);

    // Altered: another incident's id under the same signature.
    let altered = token.replacen(&format!("icc_{id}."), "icc_999.", 1);
    for forged in [altered.as_str(), "icc_1.2.3.AAAA", "not a token"] {
        let refused = confirm_by_mail(&app, json!({"token": forged, "decision": "confirm"})).await;
        expect_problem(refused, "unauthorized").await;
    }
    for bad in [
        json!({"token": token, "decision": "maybe"}),
        json!({"token": token}),
        json!({"token": token, "decision": "confirm", "admin": true}),
        json!({"token": "", "decision": "confirm"}),
    ] {
        let refused = confirm_by_mail(&app, bad).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    // Past fourteen days the link no longer works.
    app.clock.advance(Duration::days(14) + Duration::minutes(1));
    let late = confirm_by_mail(&app, json!({"token": token, "decision": "confirm"})).await;
    expect_problem(late, "confirmation_expired").await;

    // Guessing is slowed down like password guessing (the failures above count too).
    let mut refused_with = StatusCode::OK;
    for _ in 0..25 {
        let response = confirm_by_mail(
            &app,
            json!({"token": "icc_1.2.3.AAAA", "decision": "confirm"}),
        )
        .await;
        refused_with = response.status();
        if refused_with == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            break;
        }
    }
    assert_eq!(refused_with, StatusCode::TOO_MANY_REQUESTS);
}
