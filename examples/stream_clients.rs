//! The stream benchmark's clients (`bench/stream.sh`): holds N Server-Sent Event streams open
//! against the server and measures, for every `incident.created` event each stream receives, the
//! time from the event's `occurred_at` (taken by the server inside the writing request, before
//! its commit) to its arrival: an upper bound of commit-to-client latency.
//!
//! Compiled, so that the clients' own cost stays small beside the server's: the Python client
//! (`bench/stream_clients.py`) spent about 50 µs of the shared CPU per frame.
//!
//! Usage: `stream_clients HOST PORT TOKEN CLIENTS SECONDS [TYPES]` (TYPES: the streams' `types`
//! filter, default `incident.created`). Prints `open` once every stream is connecting, then one
//! JSON line: clients connected, events received, p50/p99/max latency in ms, streams that broke.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// What every stream reports.
#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    connected: usize,
    broken: usize,
    failures: BTreeMap<String, usize>,
}

/// The latency of each `incident.created` event in the frames of `text`; returns what is left
/// of an unfinished frame.
fn take_frames(text: &mut String, latencies: &mut Vec<f64>) {
    while let Some(end) = text.find("\n\n") {
        let now = Utc::now();
        for line in text[..end].lines() {
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            if event["type"] != "incident.created" {
                continue;
            }
            if let Some(at) = event["occurred_at"]
                .as_str()
                .and_then(|at| at.parse::<DateTime<Utc>>().ok())
            {
                latencies.push((now - at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        }
        text.drain(..end + 2);
    }
}

async fn stream(
    client: reqwest::Client,
    url: String,
    token: String,
    tally: Arc<Mutex<Tally>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let fail = |why: String| {
        let mut tally = tally.lock().unwrap();
        tally.broken += 1;
        *tally.failures.entry(why).or_default() += 1;
    };
    let response = match client
        .get(&url)
        .bearer_auth(&token)
        .header("Accept", "text/event-stream")
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => return fail(response.status().to_string()),
        Err(err) => return fail(format!("connect: {err}")),
    };
    tally.lock().unwrap().connected += 1;
    let mut response = response;
    let mut text = String::new();
    let mut latencies = Vec::new();
    let mut stop = stop;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            chunk = response.chunk() => match chunk {
                Ok(Some(bytes)) => {
                    text.push_str(&String::from_utf8_lossy(&bytes));
                    take_frames(&mut text, &mut latencies);
                }
                Ok(None) => {
                    fail("closed".into());
                    break;
                }
                Err(err) => {
                    fail(format!("read: {err}"));
                    break;
                }
            },
        }
    }
    tally.lock().unwrap().latencies_ms.extend(latencies);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: stream_clients HOST PORT TOKEN CLIENTS SECONDS [TYPES]");
        std::process::exit(2);
    }
    let (host, port, token) = (&args[1], &args[2], args[3].clone());
    let clients: usize = args[4].parse().expect("CLIENTS is a number");
    let seconds: f64 = args[5].parse().expect("SECONDS is a number");
    let types = args.get(6).map_or("incident.created", String::as_str);
    let url = format!("http://{host}:{port}/api/v1/stream?types={types}");
    // One thread, like the server's fair share of a 2-core machine would allow a client.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("an HTTP client");
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (stop_all, stop) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::with_capacity(clients);
        for _ in 0..clients {
            tasks.push(tokio::spawn(stream(
                client.clone(),
                url.clone(),
                token.clone(),
                tally.clone(),
                stop.clone(),
            )));
            // About 500 connections a second, as the Python client opens them.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        println!("open");
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        let _ = stop_all.send(true);
        for task in tasks {
            let _ = task.await;
        }
        let mut tally = tally.lock().unwrap();
        tally.latencies_ms.sort_by(f64::total_cmp);
        let latencies = &tally.latencies_ms;
        let pct = |p: f64| {
            (!latencies.is_empty()).then(|| {
                let at = ((latencies.len() as f64 * p) as usize).min(latencies.len() - 1);
                (latencies[at] * 10.0).round() / 10.0
            })
        };
        let summary = serde_json::json!({
            "clients": clients,
            "connected": tally.connected,
            "broken": tally.broken,
            "failures": tally.failures,
            "events": latencies.len(),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": latencies.last().map(|max| (max * 10.0).round() / 10.0),
        });
        println!("{summary}");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole_and_only_created_events_count() {
        let mut text = String::from(
            "id: 1\nevent: incident.created\ndata: {\"type\":\"incident.created\",\"occurred_at\":\"2026-12-06T10:00:00Z\"}\n\n\
             : heartbeat\n\n\
             id: 2\nevent: note.created\ndata: {\"type\":\"note.created\",\"occurred_at\":\"2026-12-06T10:00:00Z\"}\n\nid: 3\nda",
        );
        let mut latencies = Vec::new();
        take_frames(&mut text, &mut latencies);
        assert_eq!(latencies.len(), 1);
        assert!(latencies[0] > 0.0);
        assert_eq!(text, "id: 3\nda");
    }
}
