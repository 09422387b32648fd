use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn the_taxonomy_is_served_in_both_languages() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.create_customer(&admin, "C1").await;
    let (_, portal) = app
        .create_user(&admin, "portal", &["customer"], Some(customer))
        .await;
    // Any authenticated user may read it; customer portals need it to report incidents.
    let taxonomy = app.get("/api/v1/taxonomy", &portal).ok().await;
    let categories = taxonomy["categories"].as_array().unwrap();
    assert_eq!(categories.len(), 10);
    let subcategories: Vec<&Value> = categories
        .iter()
        .flat_map(|c| c["subcategories"].as_array().unwrap())
        .collect();
    assert_eq!(subcategories.len(), 24);
    let find = |code: &str| *subcategories.iter().find(|s| s["code"] == code).unwrap();
    assert_eq!(find("unusable_after_upgrade")["default_level"], "high");
    assert_eq!(find("upgrade_error")["default_level"], "medium");
    assert_eq!(find("upgrade_error")["name_zh"], "升级出错");
    assert_eq!(find("usage_howto")["default_level"], "low");
    assert_eq!(categories[0]["code"], "upgrade_issue");
    assert_eq!(categories[0]["name_zh"], "升级时出现问题");

    let causes = taxonomy["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 9);
    let subcauses: usize = causes
        .iter()
        .map(|c| c["subcauses"].as_array().unwrap().len())
        .sum();
    assert_eq!(subcauses, 14);
    let system = causes
        .iter()
        .find(|c| c["code"] == "system_defect")
        .unwrap();
    assert_eq!(system["subcauses"][2]["code"], "multi_site_bug");

    app.send(Method::GET, "/api/v1/taxonomy", None, None)
        .refused("unauthorized")
        .await;
}

#[tokio::test]
async fn sla_policies_default_to_the_procedure_and_admins_change_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, desk) = app
        .create_user(&admin, "desk", &["service_desk"], None)
        .await;
    let policies = app.get("/api/v1/sla-policies", &desk).ok().await;
    let targets: Vec<(Value, Value)> = policies
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["level"].clone(), p["resolution_minutes"].clone()))
        .collect();
    assert_eq!(
        targets,
        [
            (json!("high"), json!(120)),
            (json!("medium"), json!(240)),
            (json!("low"), json!(480))
        ]
    );

    let response = app
        .send(
            Method::PUT,
            "/api/v1/sla-policies/high",
            Some(&admin),
            Some(json!({"resolution_minutes": 90})),
        )
        .await;
    assert_eq!(response.headers()["etag"], "\"2\"");
    let changed = expect_ok(response).await;
    assert_eq!(changed["resolution_minutes"], 90);
    assert!(changed["updated_by"].is_i64());
    let policies = app.get("/api/v1/sla-policies", &desk).ok().await;
    assert_eq!(policies[0]["resolution_minutes"], 90);

    app.send_if_match(
        Method::PUT,
        "/api/v1/sla-policies/high",
        &admin,
        "\"1\"",
        json!({"resolution_minutes": 100}),
    )
    .refused("version_mismatch")
    .await;
}

#[tokio::test]
async fn sla_policy_changes_are_validated() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for body in [
        json!({"resolution_minutes": 0}),
        json!({"resolution_minutes": 600_000}),
        json!({"resolution_minutes": "2h"}),
        json!({}),
    ] {
        let problem = app
            .send(
                Method::PUT,
                "/api/v1/sla-policies/low",
                Some(&admin),
                Some(body),
            )
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), ["resolution_minutes"]);
    }
    app.send(
        Method::PUT,
        "/api/v1/sla-policies/urgent",
        Some(&admin),
        Some(json!({"resolution_minutes": 5})),
    )
    .refused("not_found")
    .await;
}
