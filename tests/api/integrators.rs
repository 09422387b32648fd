//! The integrator's first hour: what a newcomer meets in Swagger UI and a generated client.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_json_operation_refuses_a_body_declared_as_something_else() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let body = json!({"title": "打印机卡纸", "customer_id": c.customer,
                      "reporter": {"name": "王芳", "phone": "010-5555-0101"}})
    .to_string();
    let create_declared_as = |declared: &'static str| {
        app.client
            .post(app.url("/api/v1/incidents"))
            .bearer_auth(&c.desk)
            .header("content-type", declared)
            .body(body.clone())
            .send()
    };
    for declared in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "not a media type",
    ] {
        let response = create_declared_as(declared).await.unwrap();
        let problem = expect_problem(response, "unsupported_media_type").await;
        assert_eq!(problem["status"], 415);
        assert!(problem["detail"].as_str().unwrap().contains(declared));
    }
    // Sign-in is a JSON operation too.
    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=admin&password=x")
        .send()
        .await
        .unwrap();
    expect_problem(response, "unsupported_media_type").await;

    // JSON with a charset, or a +json type, is JSON.
    for declared in [
        "application/json; charset=utf-8",
        "application/problem+json",
    ] {
        let response = create_declared_as(declared).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{declared}");
    }
    // An action without a body has nothing to misread, whatever the client library declares.
    let incident = app
        .create_incident(
            &c.desk,
            json!({"title": "收费窗口打印失败", "customer_id": c.customer}),
        )
        .await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/incidents/{}/accept", incident["id"])))
        .bearer_auth(&c.desk)
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_administrator_is_told_which_roles_work_incidents() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let problem = app
        .get("/api/v1/incidents", &admin)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(problem["status"], 403);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("service_desk"), "{detail}");
    assert!(detail.contains("POST /api/v1/users"), "{detail}");

    // Others hear only the roles.
    let c = app.cast().await;
    let problem = app
        .get("/api/v1/users", &c.desk)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(problem["status"], 403);
    assert!(!problem["detail"].as_str().unwrap().contains("POST"));
}

#[tokio::test]
async fn swagger_ui_keeps_the_token_across_reloads() {
    let app = TestApp::spawn().await;
    let initializer = app
        .send(
            Method::GET,
            "/swagger-ui/swagger-initializer.js",
            None,
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains("\"persistAuthorization\": true")
            || initializer.contains("\"persistAuthorization\":true"),
        "{initializer}"
    );
}

#[tokio::test]
async fn list_pages_refer_to_their_item_schema_and_always_carry_next_cursor() {
    let app = TestApp::spawn().await;
    let doc = app
        .send(Method::GET, "/api-docs/openapi.json", None, None)
        .ok()
        .await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let pages: Vec<&String> = schemas.keys().filter(|k| k.starts_with("Page_")).collect();
    assert!(pages.len() >= 10, "{pages:?}");
    for page in pages {
        let item = &page["Page_".len()..];
        assert_eq!(
            schemas[page]["properties"]["items"]["items"]["$ref"],
            format!("#/components/schemas/{item}"),
            "{page}"
        );
        assert_eq!(
            schemas[page]["required"],
            json!(["items", "next_cursor"]),
            "{page}"
        );
    }
    // A list's last page sends `next_cursor: null`, as documented.
    let admin = app.admin_token().await;
    let page = app.get("/api/v1/users", &admin).ok().await;
    assert!(page["next_cursor"].is_null());
    assert!(page.as_object().unwrap().contains_key("next_cursor"));

    // Parameters the server ignores are not documented: one incident's escalations come
    // from its path alone.
    let params = &doc["paths"]["/api/v1/incidents/{id}/escalations"]["get"]["parameters"];
    let names: Vec<&str> = params
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"incident_id"), "{names:?}");
}

#[tokio::test]
async fn the_procedure_is_served_as_the_state_machine_decides_it() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    app.send(Method::GET, "/api/v1/procedure", None, None)
        .refused("unauthorized")
        .await;
    // Any signed-in user, the reporter's organisation included.
    let procedure = app.get("/api/v1/procedure", &c.portal).ok().await;
    let states: Vec<&str> = procedure["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["new", "in_progress", "resolved", "closed"]);
    let actions = procedure["actions"].as_array().unwrap();
    let closes: Vec<&Value> = actions.iter().filter(|a| a["action"] == "close").collect();
    assert_eq!(closes.len(), 3);
    assert!(closes.iter().all(|a| a["roles"] == json!(["service_desk"])));
    assert!(actions.iter().all(|a| a["from"] != "closed"));
    let confirm = actions.iter().find(|a| a["action"] == "confirm").unwrap();
    assert_eq!(confirm["from"], "resolved");
    assert_eq!(confirm["roles"], json!(["service_desk", "customer"]));

    // The levels carry the targets in force, not the shipped ones.
    app.send(
        Method::PUT,
        "/api/v1/sla-policies/high",
        Some(&c.admin),
        Some(json!({"resolution_minutes": 90})),
    )
    .ok()
    .await;
    let procedure = app.get("/api/v1/procedure", &c.desk).ok().await;
    assert_eq!(
        procedure["levels"][0],
        json!({"level": "high", "sla_hours": 1.5})
    );
}
