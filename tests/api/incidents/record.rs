//! 《事件记录单》 (SPEC §9): the printable record, its escaping and its visibility.

use serde_json::json;

use crate::helpers::*;

async fn page(app: &TestApp, id: &serde_json::Value, token: &str) -> String {
    let response = app
        .get_accepting(
            &format!("/api/v1/incidents/{id}/record"),
            token,
            "text/html",
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_closed_incident_prints_every_part_of_the_form() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = closed_history(
        &app,
        &c,
        "2025-01-10T00:00:00Z",
        "2025-01-10T01:00:00Z",
        "2025-01-10T02:00:00Z",
        "resolved",
    )
    .await;
    let id = &incident["id"];
    app.clock.set(at("2025-01-11T00:00:00Z"));
    app.post(
        &format!("/api/v1/incidents/{id}/follow-ups"),
        &c.desk,
        json!({"channel": "phone", "reached": true, "satisfaction": 5, "comment": "用户满意"}),
    )
    .created()
    .await;

    let html = page(&app, id, &c.desk).await;
    for expected in [
        "<h1>事件记录单</h1>",
        incident["number"].as_str().unwrap(),
        "收费模块无法录入",
        "操作到某个模块无法录入",
        "<th scope=\"row\">事件等级</th><td>高</td>",
        // Times in Asia/Shanghai.
        "<th scope=\"row\">解决时间</th><td>2025-01-10 09:00</td>",
        "<th scope=\"row\">关闭原因</th><td>已解决</td>",
        "重新部署补丁",
        "某个模块功能不能使用",
        "八、回访记录",
        "<td>用户满意</td>",
        "@media print",
        "用户签字",
    ] {
        assert!(html.contains(expected), "missing {expected}");
    }
}

#[tokio::test]
async fn values_are_escaped_and_the_record_is_visible_as_the_incident_is() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = app
        .create_incident(
            &c.portal,
            json!({"title": "<script>alert(1)</script>", "description": "\"><img src=x onerror=alert(2)>"}),
        )
        .await;
    let id = &incident["id"];

    let html = page(&app, id, &c.portal).await;
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("alert(1)"), "the title is printed, inert");
    // Escalations and follow-ups are staff records: not on a customer's copy.
    assert!(!html.contains("七、升级记录"));
    assert!(page(&app, id, &c.desk).await.contains("七、升级记录"));

    let other = app.create_customer(&c.admin, "OTHER").await;
    let (_, stranger) = app
        .create_user(&c.admin, "stranger", &["customer"], Some(other))
        .await;
    let path = format!("/api/v1/incidents/{id}/record");
    app.get_accepting(&path, &stranger, "text/html")
        .refused("not_found")
        .await;
    app.get_accepting("/api/v1/incidents/999999/record", &c.desk, "text/html")
        .refused("not_found")
        .await;
    app.get_accepting(&path, &c.desk, "application/json")
        .refused("not_acceptable")
        .await;
    let without_accept = app.get(&path, &c.desk).await;
    assert_eq!(without_accept.status(), 200);
}
