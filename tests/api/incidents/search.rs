//! Incident search (SPEC §14): words, not substrings; ranked; a number first; internal notes for
//! staff only; searchable as soon as the write returns.

use serde_json::{Value, json};

use crate::helpers::*;

fn id(incident: &Value) -> i64 {
    incident["id"].as_i64().unwrap()
}

async fn found(app: &TestApp, token: &str, query: &str) -> Vec<i64> {
    let path = format!("/api/v1/incidents?q={}", urlencoding(query));
    page_ids(&app.get(&path, token).ok().await)
}

/// Waits up to `secs` seconds for the start-up job to clear the marker `count` counts.
async fn marker_cleared(database: &str, count: &str, secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while count_in(database, count) != 0 {
        assert!(std::time::Instant::now() < deadline, "the marker stayed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn words_match_in_any_order_stemmed_and_segmented_and_rank_the_title_first() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let chinese = app
        .create_incident(
            &c.desk,
            json!({"title": "财务系统升级出错", "customer_id": c.customer}),
        )
        .await;
    let english = app
        .create_incident(
            &c.desk,
            json!({"title": "Upgrade errors on the ledger", "customer_id": c.customer}),
        )
        .await;
    let mentions = app
        .create_incident(
            &c.desk,
            json!({"title": "打印机卡纸", "customer_id": c.customer,
                   "description": "Happened after the upgrade of the print server"}),
        )
        .await;
    // A substring of a word is not a word of its own in English.
    app.create_incident(
        &c.desk,
        json!({"title": "Upgraded printers", "customer_id": c.customer,
               "description": "errorless"}),
    )
    .await;

    assert_eq!(
        found(&app, &c.desk, "errors upgrading").await,
        [id(&english)]
    );
    assert_eq!(found(&app, &c.desk, "ERROR Ledger").await, [id(&english)]);
    assert_eq!(found(&app, &c.desk, "出错 财务系统").await, [id(&chinese)]);
    assert_eq!(found(&app, &c.desk, "财务升级").await, [id(&chinese)]);
    // Every word must match.
    assert!(found(&app, &c.desk, "upgrade 扫描仪").await.is_empty());
    assert_eq!(found(&app, &c.desk, "upgrade 卡纸").await, [id(&mentions)]);
    // Words of the title rank above the description's, though the description's is newer than
    // one of them.
    let upgrade = found(&app, &c.desk, "upgrade").await;
    assert_eq!(upgrade.len(), 3, "{upgrade:?}");
    assert_eq!(upgrade.last(), Some(&id(&mentions)), "{upgrade:?}");
    // A sort named wins over relevance.
    let newest_first = app
        .get(
            "/api/v1/incidents?q=upgrade&sort=-created_at&limit=200",
            &c.desk,
        )
        .ok()
        .await;
    let mut by_creation = upgrade.clone();
    by_creation.sort_by(|a, b| b.cmp(a));
    assert_eq!(page_ids(&newest_first), by_creation);
    // Stop words alone find nothing; punctuation alone is no search at all, as for knowledge.
    assert!(found(&app, &c.desk, "the").await.is_empty());
    assert_eq!(found(&app, &c.desk, "，。!").await.len(), 4);
}

#[tokio::test]
async fn a_number_finds_its_incident_first() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let named = app
        .create_incident(
            &c.desk,
            json!({"title": "磁盘告警", "customer_id": c.customer}),
        )
        .await;
    let number = named["number"].as_str().unwrap().to_owned();
    let mentioning = app
        .create_incident(
            &c.desk,
            json!({"title": format!("Same fault as {number}"), "customer_id": c.customer}),
        )
        .await;
    for query in [
        number.clone(),
        number.to_lowercase(),
        number[4..].to_owned(),
    ] {
        let hits = found(&app, &c.desk, &query).await;
        assert_eq!(hits.first(), Some(&id(&named)), "{query}: {hits:?}");
    }
    // The incident that names the number in its title is found too, after it.
    assert_eq!(
        found(&app, &c.desk, &number).await,
        [id(&named), id(&mentioning)]
    );
    // Under a named order too, where only the number (not its text) finds it.
    let digits = &number[4..];
    let ordered = app
        .get(
            &format!("/api/v1/incidents?q={digits}&sort=-created_at"),
            &c.desk,
        )
        .ok()
        .await;
    assert_eq!(ordered["items"][0]["id"], named["id"]);
    // A number the caller may not see is not listed.
    let admin = &c.admin;
    let other = app.create_customer(admin, "OTHER").await;
    let theirs = app
        .create_incident(
            &c.desk,
            json!({"title": "别家的事件", "customer_id": other}),
        )
        .await;
    let theirs_number = theirs["number"].as_str().unwrap().to_owned();
    assert!(found(&app, &c.portal, &theirs_number).await.is_empty());
    assert_eq!(found(&app, &c.desk, &theirs_number).await, [id(&theirs)]);
}

#[tokio::test]
async fn every_write_is_searchable_when_it_returns_and_internal_notes_only_for_staff() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = app
        .create_incident(
            &c.portal,
            json!({"title": "挂号系统很慢", "subcategory": "module_input_blocked"}),
        )
        .await;
    let path = format!("/api/v1/incidents/{}", incident["id"]);
    assert_eq!(found(&app, &c.portal, "挂号 慢").await, [id(&incident)]);

    // A changed title: the new words find it, the old ones no longer do.
    let changed = app
        .patch(&path, &c.desk, json!({"title": "Registration timeouts"}))
        .ok()
        .await;
    assert_eq!(changed["title"], "Registration timeouts");
    assert_eq!(found(&app, &c.desk, "timeout").await, [id(&incident)]);
    assert!(found(&app, &c.desk, "挂号").await.is_empty());

    // Notes: public ones for everybody who sees the incident, internal ones for staff.
    app.post(
        &format!("{path}/notes"),
        &c.desk,
        json!({"visibility": "public", "body": "已联系厂商 vendor contacted"}),
    )
    .created()
    .await;
    app.post(
        &format!("{path}/notes"),
        &c.l2,
        json!({"visibility": "internal", "body": "数据库死锁 deadlock on the queue table"}),
    )
    .created()
    .await;
    for (token, query, expected) in [
        (&c.portal, "vendor", vec![id(&incident)]),
        (&c.portal, "厂商", vec![id(&incident)]),
        (&c.desk, "deadlock", vec![id(&incident)]),
        (&c.desk, "死锁", vec![id(&incident)]),
        (&c.portal, "deadlock", vec![]),
        (&c.portal, "死锁", vec![]),
        // An internal word beside a public one still hides the incident from the customer.
        (&c.portal, "vendor deadlock", vec![]),
        (&c.desk, "vendor deadlock", vec![id(&incident)]),
    ] {
        assert_eq!(found(&app, token, query).await, expected, "{query}");
    }

    // Workaround and solution.
    app.act_ok(&c.desk, &incident["id"], "accept", json!({}))
        .await;
    app.act_ok(
        &c.desk,
        &incident["id"],
        "workaround",
        json!({"description": "重启中间件 restart middleware"}),
    )
    .await;
    assert_eq!(found(&app, &c.portal, "middleware").await, [id(&incident)]);
    app.act_ok(&c.desk, &incident["id"], "resolve", resolution())
        .await;
    assert_eq!(
        found(&app, &c.portal, "重新部署补丁").await,
        [id(&incident)]
    );
}

#[tokio::test]
async fn relevance_pages_walk_every_match_once_and_filters_still_apply() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let other = app.create_customer(&c.admin, "OTHER").await;
    let mut mine = Vec::new();
    for i in 0..7 {
        // Titles repeat the word a different number of times, so ranks differ and tie.
        let title = format!("network {}", "outage ".repeat(1 + i % 3));
        let incident = app
            .create_incident(&c.desk, json!({"title": title, "customer_id": c.customer}))
            .await;
        mine.push(id(&incident));
    }
    let theirs = app
        .create_incident(
            &c.desk,
            json!({"title": "network outage", "customer_id": other}),
        )
        .await;

    let full = app
        .get("/api/v1/incidents?q=outage&limit=200", &c.desk)
        .ok()
        .await;
    let expected = page_ids(&full);
    assert_eq!(expected.len(), 8);
    let walked = walk_ids(&app, &c.desk, "/api/v1/incidents?q=outage", 3).await;
    assert_eq!(walked, expected);
    // More occurrences rank higher.
    assert!(
        mine[2] == expected[0] || mine[5] == expected[0],
        "{expected:?}"
    );

    let customer_walk = walk_ids(&app, &c.portal, "/api/v1/incidents?q=outage", 2).await;
    let mut sorted = customer_walk.clone();
    sorted.sort();
    assert_eq!(sorted, mine);
    assert!(!customer_walk.contains(&id(&theirs)));
    let filtered = app
        .get(
            &format!("/api/v1/incidents?q=outage&customer_id={other}"),
            &c.desk,
        )
        .ok()
        .await;
    assert_eq!(page_ids(&filtered), [id(&theirs)]);

    // Without q there is nothing to rank: relevance is newest first.
    let unsearched = app
        .get("/api/v1/incidents?sort=relevance&limit=200", &c.desk)
        .ok()
        .await;
    let mut newest_first: Vec<i64> = mine.iter().copied().chain([id(&theirs)]).collect();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(page_ids(&unsearched), newest_first);
    // A cursor of relevance does not continue another order.
    let page = app
        .get("/api/v1/incidents?q=outage&limit=2", &c.desk)
        .ok()
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let problem = app
        .get(
            &format!("/api/v1/incidents?q=outage&sort=due_at&cursor={cursor}"),
            &c.desk,
        )
        .refused("validation_failed")
        .await;
    assert_eq!(error_fields(&problem), ["cursor"]);
}

#[tokio::test]
async fn incidents_from_before_search_are_indexed_at_start_up() {
    use diesel::{Connection, RunQueryDsl};
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let old = app
        .create_incident(
            &c.desk,
            json!({"title": "Legacy printer jam", "customer_id": c.customer}),
        )
        .await;
    // As in a database upgraded to incident search: no document yet, the backfill asked for.
    let mut conn = diesel::PgConnection::establish(&database_url(&app.database)).unwrap();
    diesel::sql_query("DELETE FROM incident_text")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("INSERT INTO incident_text_backfill VALUES (1)")
        .execute(&mut conn)
        .unwrap();
    assert!(found(&app, &c.desk, "legacy").await.is_empty());

    let restarted = TestApp::spawn_on(app.database.clone(), &[]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while found(&restarted, &c.desk, "legacy").await != [id(&old)] {
        assert!(
            std::time::Instant::now() < deadline,
            "not indexed at start-up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let marker = "SELECT count(*) AS n FROM incident_text_backfill";
    marker_cleared(&app.database, marker, 5).await;
    // A database created with incident search has nothing to catch up on.
    let fresh = TestApp::spawn().await;
    assert_eq!(count_in(&fresh.database, marker), 0);
}

#[tokio::test]
async fn abbreviations_that_are_english_stop_words_are_searchable() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let his = app
        .create_incident(
            &c.desk,
            json!({"title": "HIS无法登录", "customer_id": c.customer}),
        )
        .await;
    let it = app
        .create_incident(
            &c.desk,
            json!({"title": "Printer jam", "description": "IT was told", "customer_id": c.customer}),
        )
        .await;
    assert_eq!(found(&app, &c.desk, "HIS").await, [id(&his)]);
    assert_eq!(found(&app, &c.desk, "HIS 登录").await, [id(&his)]);
    assert_eq!(found(&app, &c.desk, "IT printer").await, [id(&it)]);
    // Lower case, they stay English stop words.
    assert!(found(&app, &c.desk, "his").await.is_empty());
}

#[tokio::test]
async fn documents_from_before_abbreviations_were_kept_are_written_again_at_start_up() {
    use diesel::{Connection, RunQueryDsl};
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let his = app
        .create_incident(
            &c.desk,
            json!({"title": "HIS无法登录", "customer_id": c.customer}),
        )
        .await;
    let other = app
        .create_incident(
            &c.desk,
            json!({"title": "打印机卡纸", "customer_id": c.customer}),
        )
        .await;
    let draft = app
        .post(
            "/api/v1/knowledge",
            &c.desk,
            json!({"title": "IT support hours", "symptom": "无人接听", "solution": "工作时间拨打",
                   "subcategory": "module_input_blocked"}),
        )
        .created()
        .await;
    // As written before: the `simple` part without the abbreviation; the marker of migration
    // 000026 asks for the documents to be written again.
    let mut conn = diesel::PgConnection::establish(&database_url(&app.database)).unwrap();
    for sql in [
        "UPDATE incident_text SET search_vector = setweight(to_tsvector('english', 'HIS') || \
         to_tsvector('simple', '无法 登录'), 'A')",
        "UPDATE knowledge_entries SET search_vector = to_tsvector('english', title)",
        "INSERT INTO search_rewrite_pending VALUES (1)",
    ] {
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    }
    assert!(found(&app, &c.desk, "HIS").await.is_empty());

    let restarted = TestApp::spawn_on(app.database.clone(), &[]).await;
    let marker = "SELECT count(*) AS n FROM search_rewrite_pending";
    marker_cleared(&app.database, marker, 15).await;
    assert_eq!(found(&restarted, &c.desk, "HIS").await, [id(&his)]);
    // Only the documents that name an abbreviation were written again: the other incident
    // keeps the stale one it was given above.
    assert!(found(&restarted, &c.desk, "打印机").await.is_empty());
    assert!(
        found(&restarted, &c.desk, "无法")
            .await
            .contains(&id(&other))
    );
    let knowledge = restarted.get("/api/v1/knowledge?q=IT", &c.desk).ok().await;
    assert_eq!(knowledge["items"][0]["id"], draft["id"]);
    // A database created with the rule has nothing to write again.
    let fresh = TestApp::spawn().await;
    assert_eq!(count_in(&fresh.database, marker), 0);
}
