//! The read replica (SPEC §14), against a real streaming replica (`helpers/replica.rs`): which
//! reads it answers, read-after-write across instances, the lag rule, a replica that is down,
//! and `/readyz` per pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

/// Polls `/readyz` until the replica's health is `status`; returns the last answer.
async fn replica_becomes(app: &TestApp, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let ready = app.get("/readyz", "").ok().await;
        if ready["replica"]["health"]["status"] == status {
            return ready;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not become {status}: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn history_actions(history: &Value) -> Vec<String> {
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lagging_reads_go_to_the_replica_and_a_callers_own_writes_are_read_from_the_primary() {
    let Some(pair) = ReplicaPair::shared() else {
        return;
    };
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "idt_{}_replica_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let mut settings = pair.settings(&name);
    settings.push(("READ_AFTER_WRITE_WINDOW", "1s".into()));
    settings.push(("REPLICA_MAX_LAG", "4s".into()));
    let extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Two instances on one database: a caller may land on either.
    let first = TestApp::spawn_on(name.clone(), &extra).await;
    let second = TestApp::spawn_on(name.clone(), &extra).await;

    let ready = replica_becomes(&first, "streaming", Duration::from_secs(30)).await;
    replica_becomes(&second, "streaming", Duration::from_secs(10)).await;
    assert_eq!(ready["primary"]["server"], "primary");
    assert_eq!(ready["primary"]["database"], name.as_str());
    assert_eq!(ready["replica"]["reached"]["server"], "replica");
    assert_eq!(ready["replica"]["reached"]["database"], name.as_str());

    let c = first.cast().await;
    let incident = first
        .create_incident(
            &c.desk,
            json!({"title": "Disk full on the archive", "customer_id": c.customer}),
        )
        .await;
    let id = incident["id"].as_i64().unwrap();
    let history = format!("/api/v1/incidents/{id}/history");
    pair.catch_up();
    // The manager has written nothing: its lagging reads go to the replica at once.
    let before = history_actions(&second.get(&history, &c.manager).ok().await);
    assert_eq!(before, ["created"]);
    replica_becomes(&first, "streaming", Duration::from_secs(10)).await;
    replica_becomes(&second, "streaming", Duration::from_secs(10)).await;

    // From here the replica stands still, as one that falls behind.
    pair.pause_replay(true);
    first
        .act_ok(&c.desk, &incident["id"], "accept", json!({}))
        .await;
    first
        .post(
            &format!("/api/v1/incidents/{id}/notes"),
            &c.desk,
            json!({"visibility": "public", "body": "checked the quota"}),
        )
        .created()
        .await;
    // The writer reads its writes, through the other instance too.
    let writer_sees = history_actions(&second.get(&history, &c.desk).ok().await);
    assert!(
        writer_sees.contains(&"accept".to_owned()),
        "{writer_sees:?}"
    );
    let searched = second.get("/api/v1/incidents?q=quota", &c.desk).ok().await;
    assert_eq!(page_ids(&searched), [id]);
    // Everybody else reads the replica, a little behind.
    let manager_sees = history_actions(&second.get(&history, &c.manager).ok().await);
    assert_eq!(manager_sees, ["created"]);
    let searched = first
        .get("/api/v1/incidents?q=quota", &c.manager)
        .ok()
        .await;
    assert!(page_ids(&searched).is_empty(), "{searched}");
    // The incident itself and the working list are never behind.
    let current = first
        .get(&format!("/api/v1/incidents/{id}"), &c.manager)
        .ok()
        .await;
    assert_eq!(current["status"], "in_progress");

    // The reports run on the replica, which takes no writes.
    for path in [
        "/api/v1/kpis?granularity=month&from=2025-01&to=2025-04".to_owned(),
        "/api/v1/reports/statistics?granularity=month&period=2025-01".to_owned(),
        "/api/v1/reports/recurring".to_owned(),
        format!("/api/v1/incidents/{id}/suggestions"),
        "/api/v1/knowledge?q=disk".to_owned(),
    ] {
        first.get(&path, &c.manager).ok().await;
    }

    // Past REPLICA_MAX_LAG the replica is skipped, and reads are current again.
    let lagging = replica_becomes(&first, "lagging", Duration::from_secs(15)).await;
    assert!(
        lagging["replica"]["health"]["lag_seconds"]
            .as_f64()
            .unwrap()
            > 4.0
    );
    replica_becomes(&second, "lagging", Duration::from_secs(5)).await;
    let manager_sees = history_actions(&second.get(&history, &c.manager).ok().await);
    assert!(
        manager_sees.contains(&"accept".to_owned()),
        "{manager_sees:?}"
    );
    let searched = first
        .get("/api/v1/incidents?q=quota", &c.manager)
        .ok()
        .await;
    assert_eq!(page_ids(&searched), [id]);

    pair.pause_replay(false);
    replica_becomes(&first, "streaming", Duration::from_secs(15)).await;
    replica_becomes(&second, "streaming", Duration::from_secs(5)).await;
    let manager_sees = history_actions(&first.get(&history, &c.manager).ok().await);
    assert!(
        manager_sees.contains(&"accept".to_owned()),
        "{manager_sees:?}"
    );
}

#[tokio::test]
async fn a_replica_that_does_not_answer_is_skipped_and_readyz_says_so() {
    let port = free_port();
    let replica_url = format!("postgres://postgres@127.0.0.1:{port}/nowhere?sslmode=disable");
    let app = TestApp::spawn_with(&[("DATABASE_READ_URL", replica_url.as_str())]).await;
    let ready = replica_becomes(&app, "down", Duration::from_secs(15)).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["primary"]["server"], "primary");
    assert!(ready["replica"]["reached"].is_null());
    let c = app.cast().await;
    let incident = app
        .create_incident(
            &c.desk,
            json!({"title": "Printer offline", "customer_id": c.customer}),
        )
        .await;
    let searched = app
        .get("/api/v1/incidents?q=printer", &c.manager)
        .ok()
        .await;
    assert_eq!(page_ids(&searched), [incident["id"].as_i64().unwrap()]);
    app.get(
        "/api/v1/kpis?granularity=month&from=2025-01&to=2025-04",
        &c.manager,
    )
    .ok()
    .await;
    // Without a replica there is none to report.
    let plain = TestApp::spawn().await;
    let ready = plain.get("/readyz", "").ok().await;
    assert!(ready["replica"].is_null());
    assert_eq!(ready["primary"]["database"], plain.database.as_str());
}
