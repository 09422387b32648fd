//! `incident-desk seed-demo`: a history with everything the reports count, reproducible from its
//! seed, written through the workflow's rules.

use std::process::Command;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::Value;

use crate::helpers::*;

const UNTIL: &str = "2025-07-01T00:00:00Z";

fn seed(database: &str, incidents: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_incident-desk"))
        .args([
            "seed-demo",
            "--incidents",
            incidents,
            "--months",
            "12",
            "--seed",
            "7",
            "--until",
            UNTIL,
        ])
        .env("DATABASE_URL", database_url(database))
        .env("RUST_LOG", "warn")
        .env("DEMO_PASSWORD", USER_PASSWORD)
        .output()
        .expect("run seed-demo")
}

#[derive(QueryableByName)]
struct Digest {
    #[diesel(sql_type = Text)]
    digest: String,
    #[diesel(sql_type = BigInt)]
    history: i64,
    #[diesel(sql_type = Text)]
    knowledge: String,
}

/// A digest of every incident's fields and the number of history entries people wrote (the
/// running server's SLA watcher adds its own).
fn digest(database: &str) -> (String, i64, String) {
    let mut conn = PgConnection::establish(&database_url(database)).unwrap();
    let row: Digest = diesel::sql_query(
        "SELECT md5(string_agg(concat_ws('|', i.title, i.customer_id, i.level, i.status, \
                 i.closure_code, i.created_at, i.resolved_at, i.closed_at, i.due_at), ',' \
                 ORDER BY i.id)) AS digest, \
                (SELECT count(*) FROM incident_history WHERE actor_id IS NOT NULL) AS history, \
                (SELECT md5(string_agg(concat_ws('|', title, symptom, status, author_id, \
                                                 reviewed_by, updated_at), ',' ORDER BY id)) \
                 FROM knowledge_entries) AS knowledge \
         FROM incidents i",
    )
    .get_result(&mut conn)
    .unwrap();
    (row.digest, row.history, row.knowledge)
}

fn count(report: &Value, table: &str, code: &str) -> i64 {
    report[table]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == code)
        .unwrap()["count"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn seed_demo_writes_a_reproducible_history_the_reports_can_read() {
    let app = TestApp::spawn().await;
    let output = seed(&app.database, "3000");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manager = app.login("demo.manager01", USER_PASSWORD).await;

    // Every role signs in; customers see their own organisation only.
    for user in ["demo.desk01", "demo.l201", "demo.ops01", "demo.h0001"] {
        app.login(user, USER_PASSWORD).await;
    }
    let customer = app.login("demo.h0001", USER_PASSWORD).await;
    let own = app.get("/api/v1/incidents?limit=200", &customer).ok().await;
    let mine = pluck(&own["items"], "customer_id");
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|c| *c == mine[0]));

    // Every month has closures, some late resolutions and late follow-ups.
    let kpis = app
        .get(
            "/api/v1/kpis?granularity=quarter&from=2024-Q3&to=2025-Q2",
            &manager,
        )
        .ok()
        .await;
    for row in kpis["items"].as_array().unwrap() {
        assert!(row["closed"].as_i64().unwrap() > 100, "{row}");
        let rate = row["on_time_resolution_rate"].as_f64().unwrap();
        assert!(rate > 0.6 && rate < 1.0, "{row}");
        let timeliness = row["follow_up_timeliness"].as_f64().unwrap();
        assert!(timeliness > 0.5 && timeliness < 1.0, "{row}");
    }

    // Every closure code, channel and kind of escalation occurs.
    let year = app
        .get(
            "/api/v1/reports/statistics?granularity=year&period=2025",
            &manager,
        )
        .ok()
        .await;
    for code in ["resolved", "unresolved", "duplicate", "withdrawn"] {
        assert!(count(&year, "by_closure_code", code) > 0, "{code}");
    }
    for code in ["phone", "web", "email", "monitoring", "onsite", "other"] {
        assert!(count(&year, "by_channel", code) > 0, "{code}");
    }
    for code in ["functional", "priority", "hierarchical"] {
        assert!(count(&year, "escalations_by_kind", code) > 0, "{code}");
    }
    for code in ["l1", "l2"] {
        assert!(count(&year, "by_resolving_tier", code) > 0, "{code}");
    }
    let breaches: i64 = year["sla_breaches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["breached"].as_i64().unwrap())
        .sum();
    assert!(breaches > 0);

    // The week before the history ends has a recurring fault at three or more organisations.
    app.clock.set(at(UNTIL));
    let recurring = app.get("/api/v1/reports/recurring", &manager).ok().await;
    assert!(
        !recurring["items"].as_array().unwrap().is_empty(),
        "{recurring}"
    );

    // The backlog: incidents still waiting at the end.
    let waiting = app
        .get("/api/v1/incidents?status=new&limit=200", &manager)
        .ok()
        .await;
    assert!(!waiting["items"].as_array().unwrap().is_empty());
    // Its resolved incidents are indexed for suggestions.
    let suggested = app
        .get(
            &format!(
                "/api/v1/incidents/{}/suggestions",
                waiting["items"][0]["id"]
            ),
            &manager,
        )
        .ok()
        .await;
    assert_eq!(suggested["incidents"].as_array().unwrap().len(), 5);
    assert!(!suggested["knowledge"].as_array().unwrap().is_empty());

    // A tenth as many knowledge entries, most published after review by another expert, some
    // waiting, in draft, rejected or retired; search finds them in Chinese and English.
    let entries = app.get("/api/v1/knowledge?limit=200", &manager).ok().await;
    let entries = entries["items"].as_array().unwrap();
    assert_eq!(entries.len(), 200);
    for status in ["published", "submitted", "draft", "retired"] {
        assert!(entries.iter().any(|e| e["status"] == status), "{status}");
    }
    assert!(entries.iter().any(|e| e["reject_reason"].is_string()));
    for entry in entries.iter().filter(|e| e["status"] == "published") {
        assert_ne!(entry["reviewed_by"], entry["author_id"]);
    }
    for q in ["升级出错", "ORA-00942", "upgrade"] {
        let found = app
            .get(&format!("/api/v1/knowledge?q={q}"), &customer)
            .ok()
            .await;
        assert!(!found["items"].as_array().unwrap().is_empty(), "{q}");
    }

    // The same seed, counts and end give the same history; a seeded database is not seeded twice.
    let again = clone_template();
    assert!(seed(&again, "3000").status.success());
    assert_eq!(digest(&again), digest(&app.database));
    drop_database(&again);
    let twice = seed(&app.database, "10");
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("demo data already"));
}
