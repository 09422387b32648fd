//! The knowledge base (SPEC §7): drafts, four-eyes review, visibility, search in Chinese and
//! English, concurrent approvals.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::{Value, json};

use crate::helpers::*;

fn entry(title: &str, symptom: &str, solution: &str) -> Value {
    json!({"title": title, "symptom": symptom, "solution": solution,
           "subcategory": "upgrade_error", "tags": ["HIS"]})
}

async fn step(app: &TestApp, token: &str, entry: &Value, action: &str) -> reqwest::Response {
    app.post(
        &format!("/api/v1/knowledge/{}/{action}", entry["id"]),
        token,
        json!({}),
    )
    .await
}

/// An entry the desk writes and submits and the L2 engineer approves.
async fn published(app: &TestApp, c: &Cast, body: Value) -> Value {
    let draft = app.post("/api/v1/knowledge", &c.desk, body).created().await;
    step(app, &c.desk, &draft, "submit").ok().await;
    step(app, &c.l2, &draft, "approve").ok().await
}

async fn suggestions(app: &TestApp, token: &str, incident: &Value) -> Value {
    app.get(
        &format!("/api/v1/incidents/{}/suggestions", incident["id"]),
        token,
    )
    .ok()
    .await
}

async fn search(app: &TestApp, token: &str, q: &str) -> Vec<String> {
    let path = format!("/api/v1/knowledge?q={}", urlencode(q));
    let found = app.get(&path, token).ok().await;
    pluck(&found["items"], "title")
        .into_iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

fn urlencode(q: &str) -> String {
    url::form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

#[tokio::test]
async fn an_entry_is_written_reviewed_by_another_expert_and_published() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let draft = app
        .post(
            "/api/v1/knowledge",
            &c.l2,
            entry(
                "升级出错",
                "ORA-00942: 表或视图不存在",
                "重新执行数据库脚本",
            ),
        )
        .created()
        .await;
    assert_eq!(
        (&draft["status"], &draft["category"], &draft["version"]),
        (&json!("draft"), &json!("upgrade_issue"), &json!(1))
    );
    let path = format!("/api/v1/knowledge/{}", draft["id"]);

    // Only the author edits, and only a draft.
    app.patch(&path, &c.desk, json!({"title": "x"}))
        .refused("forbidden")
        .await;
    let edited = app
        .patch(
            &path,
            &c.l2,
            json!({"title": "升级出错：数据库脚本执行失败", "cause": "脚本未执行"}),
        )
        .ok()
        .await;
    assert_eq!(edited["version"], 2);
    // Steps without fields need no body at all.
    app.send_raw(
        reqwest::Method::POST,
        &format!("{path}/submit"),
        Some(&c.l2),
        "",
    )
    .ok()
    .await;
    app.patch(&path, &c.l2, json!({"title": "y"}))
        .refused("illegal_transition")
        .await;

    // Customers do not see it yet; its author cannot approve it; the desk is no expert.
    app.get(&path, &c.portal).refused("not_found").await;
    step(&app, &c.l2, &draft, "approve")
        .refused("forbidden")
        .await;
    step(&app, &c.desk, &draft, "approve")
        .refused("forbidden")
        .await;
    // Rejected with a reason back to draft, resubmitted, approved by another expert.
    let rejected = app
        .post(
            &format!("{path}/reject"),
            &c.manager,
            json!({"reason": "请补充原因"}),
        )
        .ok()
        .await;
    assert_eq!(
        (&rejected["status"], &rejected["reject_reason"]),
        (&json!("draft"), &json!("请补充原因"))
    );
    step(&app, &c.l2, &draft, "submit").ok().await;
    let approved = step(&app, &c.manager, &draft, "approve").ok().await;
    assert_eq!(approved["status"], "published");
    assert!(approved["published_at"].is_string());
    assert_eq!(app.get(&path, &c.portal).ok().await["status"], "published");
    let conflict = step(&app, &c.manager, &draft, "approve")
        .refused("illegal_transition")
        .await;
    assert_eq!(conflict["allowed_actions"], json!(["retire"]));

    // Retired entries leave the customers' view.
    step(&app, &c.l2, &draft, "retire").ok().await;
    app.get(&path, &c.portal).refused("not_found").await;
}

#[tokio::test]
async fn search_finds_chinese_and_english_terms_and_substrings() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    published(
        &app,
        &c,
        entry(
            "升级出错：数据库脚本执行失败",
            "Upgrade errors with ORA-00942 after the HIS upgrade",
            "重新执行升级包中的数据库脚本",
        ),
    )
    .await;
    published(
        &app,
        &c,
        entry(
            "打印机无法打印",
            "The printer prints blank pages",
            "更换硒鼓",
        ),
    )
    .await;
    // A draft: staff find it, customers do not.
    app.post(
        "/api/v1/knowledge",
        &c.desk,
        entry("升级后数据丢失", "草稿", "恢复备份"),
    )
    .created()
    .await;

    let first = "升级出错：数据库脚本执行失败";
    for q in [
        "升级出错",
        "upgrade error",
        "ORA-00942",
        "数据库脚本",
        "据库脚",
        "UPGRADES",
    ] {
        assert_eq!(search(&app, &c.portal, q).await, [first], "{q}");
    }
    assert_eq!(search(&app, &c.portal, "打印机").await, ["打印机无法打印"]);
    // `HIS` (every entry's tag) is no stop word here, though `his` is one in English.
    assert_eq!(search(&app, &c.portal, "HIS").await.len(), 2);
    assert!(search(&app, &c.portal, "his").await.is_empty());
    // Every term must be present.
    assert!(search(&app, &c.portal, "打印机 ORA-00942").await.is_empty());
    // Staff see drafts too; the better match ranks first.
    let staff = search(&app, &c.desk, "升级").await;
    assert_eq!(staff.len(), 2, "{staff:?}");
    assert_eq!(staff[0], first);
    let drafts = app
        .get("/api/v1/knowledge?status=draft", &c.portal)
        .ok()
        .await;
    assert_eq!(drafts["items"], json!([]));
    let tagged = app.get("/api/v1/knowledge?tag=HIS", &c.desk).ok().await;
    assert_eq!(tagged["items"].as_array().unwrap().len(), 3);
    let hit = &app
        .get(
            &format!("/api/v1/knowledge?q={}", urlencode("升级出错")),
            &c.desk,
        )
        .ok()
        .await["items"][0];
    assert!(hit["score"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn two_concurrent_approvals_publish_once() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let draft = app
        .post("/api/v1/knowledge", &c.desk, entry("并发", "症状", "方案"))
        .created()
        .await;
    step(&app, &c.desk, &draft, "submit").ok().await;
    let (a, b) = tokio::join!(
        step(&app, &c.l2, &draft, "approve"),
        step(&app, &c.manager, &draft, "approve")
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
}

#[tokio::test]
async fn bad_entries_and_callers_are_refused() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    for (body, field) in [
        (
            json!({"title": " ", "symptom": "s", "solution": "s"}),
            "title",
        ),
        (
            json!({"title": "t", "symptom": "s", "solution": ""}),
            "solution",
        ),
        (
            json!({"title": "t", "symptom": "s", "solution": "s", "subcategory": "nope"}),
            "subcategory",
        ),
        (
            json!({"title": "t", "symptom": "s", "solution": "s", "source_incident_id": 999999}),
            "source_incident_id",
        ),
        (
            json!({"title": "t".repeat(201), "symptom": "s", "solution": "s"}),
            "title",
        ),
    ] {
        let problem = app
            .post("/api/v1/knowledge", &c.desk, body)
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), [field]);
    }
    app.post("/api/v1/knowledge", &c.portal, entry("t", "s", "s"))
        .refused("forbidden")
        .await;
    app.post("/api/v1/knowledge", &c.ops, entry("t", "s", "s"))
        .refused("forbidden")
        .await;
    let unknown = app
        .post(
            "/api/v1/knowledge",
            &c.desk,
            json!({"title": "t", "symptom": "s", "solution": "s", "owner": 1}),
        )
        .await;
    assert!(unknown.status().is_client_error());
    app.get("/api/v1/knowledge/424242", &c.desk)
        .refused("not_found")
        .await;
    let draft = app
        .post("/api/v1/knowledge", &c.desk, entry("t", "s", "s"))
        .created()
        .await;
    step(&app, &c.desk, &draft, "submit").ok().await;
    app.post(
        &format!("/api/v1/knowledge/{}/reject", draft["id"]),
        &c.l2,
        json!({"reason": " "}),
    )
    .refused("validation_failed")
    .await;
    app.get(&format!("/api/v1/knowledge?q={}", "x".repeat(201)), &c.desk)
        .refused("validation_failed")
        .await;
}

#[tokio::test]
async fn resolving_with_a_published_entry_counts_its_use() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let solved = published(&app, &c, entry("升级出错", "ORA-00942", "重新执行脚本")).await;
    let draft = app
        .post("/api/v1/knowledge", &c.desk, entry("草稿", "s", "s"))
        .created()
        .await;
    let incident = app
        .create_incident(
            &c.portal,
            json!({"title": "升级后报错", "subcategory": "upgrade_error"}),
        )
        .await;
    let id = &incident["id"];
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    let with = |entry: &Value| {
        let mut body = resolution();
        body["knowledge_entry_id"] = entry["id"].clone();
        body
    };
    for (body, code) in [
        (with(&draft), "invalid"),
        (with(&json!({"id": 999_999})), "not_found"),
    ] {
        let problem = app
            .act(&c.desk, id, "resolve", body)
            .refused("validation_failed")
            .await;
        assert_eq!(error_fields(&problem), ["knowledge_entry_id"]);
        assert_eq!(problem["errors"][0]["code"], code);
    }
    let resolved = app.act_ok(&c.desk, id, "resolve", with(&solved)).await;
    assert_eq!(resolved["knowledge_entry_id"], solved["id"]);
    let after = app
        .get(&format!("/api/v1/knowledge/{}", solved["id"]), &c.desk)
        .ok()
        .await;
    assert_eq!(after["times_used"], 1);
}

/// An incident the customer reported with `title`, resolved and closed as `resolved`.
async fn solved_incident(app: &TestApp, c: &Cast, title: &str, subcategory: &str) -> Value {
    let incident = app
        .create_incident(
            &c.portal,
            json!({"title": title, "subcategory": subcategory}),
        )
        .await;
    let id = &incident["id"];
    app.act_ok(&c.desk, id, "accept", json!({})).await;
    app.act_ok(&c.desk, id, "resolve", resolution()).await;
    app.act_ok(&c.portal, id, "confirm", json!({})).await;
    app.act_ok(&c.desk, id, "close", json!({"closure_code": "resolved"}))
        .await
}

#[tokio::test]
async fn suggestions_rank_the_obviously_similar_entry_and_incident_first() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let upgrade = published(
        &app,
        &c,
        entry(
            "升级出错：数据库脚本执行失败",
            "升级后收费模块报错 ORA-00942",
            "重新执行升级包中的数据库脚本",
        ),
    )
    .await;
    published(
        &app,
        &c,
        json!({"title": "打印机无法打印", "symptom": "打印出白纸", "solution": "更换硒鼓",
               "subcategory": "hardware_repair_info"}),
    )
    .await;
    let similar = solved_incident(&app, &c, "升级后收费模块报错 ORA-00942", "upgrade_error").await;
    solved_incident(&app, &c, "打印机卡纸", "hardware_repair_info").await;
    let open = app
        .create_incident(
            &c.portal,
            json!({"title": "升级出错，提示 ORA-00942", "description": "数据库脚本执行失败",
                   "subcategory": "upgrade_error"}),
        )
        .await;
    let path = format!("/api/v1/incidents/{}/suggestions", open["id"]);

    let suggestions = app.get(&path, &c.desk).ok().await;
    let knowledge = suggestions["knowledge"].as_array().unwrap();
    assert_eq!(knowledge[0]["entry"]["id"], upgrade["id"]);
    assert!(knowledge[0]["score"].as_f64().unwrap() > 0.0);
    assert!(
        knowledge
            .iter()
            .all(|k| k["entry"]["title"] != "打印机无法打印")
    );
    let incidents = suggestions["incidents"].as_array().unwrap();
    assert_eq!(incidents[0]["id"], similar["id"]);
    assert_eq!(incidents[0]["solution"], "重新部署补丁");
    assert!(incidents.iter().all(|i| i["title"] != "打印机卡纸"));

    app.get(&path, &c.portal).refused("forbidden").await;
    app.get("/api/v1/incidents/999999/suggestions", &c.desk)
        .refused("not_found")
        .await;
}

#[tokio::test]
async fn suggestions_look_beyond_the_subcategory_through_the_search_index() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let same_words = solved_incident(
        &app,
        &c,
        "医保接口证书过期，SSL handshake failed",
        "onsite_deploy",
    )
    .await;
    let same_subcategory_only = solved_incident(&app, &c, "打印机卡纸", "data_resubmit").await;
    let ask = |subcategory: Option<&str>| {
        let mut body = json!({"title": "医保接口证书过期 SSL handshake failed"});
        if let Some(subcategory) = subcategory {
            body["subcategory"] = json!(subcategory);
        }
        body
    };
    for body in [ask(Some("data_resubmit")), ask(None)] {
        let open = app.create_incident(&c.portal, body).await;
        let suggestions = suggestions(&app, &c.desk, &open).await;
        let ids = pluck(&suggestions["incidents"], "id");
        assert_eq!(ids.first(), Some(&&same_words["id"]), "{suggestions}");
        // Sharing a subcategory and no word is not similar.
        assert!(
            !ids.contains(&&same_subcategory_only["id"]),
            "{suggestions}"
        );
    }
}

#[tokio::test]
async fn a_search_matching_more_than_the_rank_window_ranks_the_newest_matches() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let oldest = published(
        &app,
        &c,
        entry("alpha alpha 升级", "alpha alpha alpha", "alpha"),
    )
    .await;
    // A thousand newer entries that match `alpha` less well.
    let mut conn = PgConnection::establish(&database_url(&app.database)).unwrap();
    diesel::sql_query(
        "INSERT INTO knowledge_entries (title, symptom, solution, status, author_id, reviewed_by, \
                                        created_at, updated_at, published_at, search_vector) \
         SELECT 'beta ' || g, 'beta alpha', 'beta', 'published', $1, $2, now(), now(), now(), \
                to_tsvector('english', 'beta ' || g || ' beta alpha beta') \
         FROM generate_series(1, 1000) AS g",
    )
    .bind::<BigInt, _>(c.desk_id)
    .bind::<BigInt, _>(c.l2_id)
    .execute(&mut conn)
    .unwrap();

    let mut seen = Vec::new();
    let mut path = "/api/v1/knowledge?q=alpha&limit=200".to_owned();
    loop {
        let page = app.get(&path, &c.desk).ok().await;
        seen.extend(pluck(&page["items"], "id").into_iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/knowledge?q=alpha&limit=200&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 1000);
    assert!(!seen.contains(&oldest["id"]));
    // A narrower query reaches it.
    assert_eq!(
        search(&app, &c.desk, "alpha 升级").await,
        ["alpha alpha 升级"]
    );
}

#[tokio::test]
async fn incidents_resolved_before_suggestions_existed_are_indexed_once_at_start_up() {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let indexed = |conn: &mut PgConnection| {
        diesel::sql_query("SELECT count(*) AS n FROM incident_search")
            .get_result::<Count>(conn)
            .unwrap()
            .n
    };
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let solved = solved_incident(&app, &c, "医保接口证书过期", "onsite_deploy").await;
    // A database from before suggestions: nothing indexed, never backfilled.
    let mut conn = PgConnection::establish(&database_url(&app.database)).unwrap();
    conn.batch_execute("DELETE FROM incident_search; DELETE FROM incident_search_state")
        .unwrap();

    let restarted = TestApp::spawn_on(app.database.clone(), &[]).await;
    assert_eq!(indexed(&mut conn), 1);
    let open = restarted
        .create_incident(&c.portal, json!({"title": "医保接口证书过期"}))
        .await;
    let suggestions = suggestions(&restarted, &c.desk, &open).await;
    assert_eq!(suggestions["incidents"][0]["id"], solved["id"]);

    // Backfilled once, later starts do not look for unindexed incidents again.
    diesel::sql_query("DELETE FROM incident_search")
        .execute(&mut conn)
        .unwrap();
    let _again = TestApp::spawn_on(app.database.clone(), &[]).await;
    assert_eq!(indexed(&mut conn), 0);
}

#[tokio::test]
async fn query_syntax_in_searches_and_incident_text_is_only_text() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let hostile = r"it's C:\temp\ 'x' & | ! ( ) <-> :* 升级' OR 1=1 -- \";
    published(&app, &c, entry(hostile, hostile, "重启")).await;
    for q in [hostile, "'", r"\", "!!", "a:*", "(升级", "&|"] {
        app.get(&format!("/api/v1/knowledge?q={}", urlencode(q)), &c.desk)
            .ok()
            .await;
    }
    assert_eq!(search(&app, &c.desk, "temp 升级").await, [hostile.trim()]);
    solved_incident(&app, &c, hostile, "upgrade_error").await;
    let open = app
        .create_incident(&c.portal, json!({"title": hostile, "description": hostile}))
        .await;
    let suggestions = suggestions(&app, &c.desk, &open).await;
    assert_eq!(suggestions["incidents"].as_array().unwrap().len(), 1);
    assert_eq!(suggestions["knowledge"].as_array().unwrap().len(), 1);
}
