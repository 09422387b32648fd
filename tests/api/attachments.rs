//! Attachments (SPEC §13), uploaded and downloaded with a real HTTP client: bytes and SHA-256
//! round trips, ranges, sniffed types, filenames, limits, who sees what, removal, closed
//! incidents, storing each file once, a server killed part-way through an upload, notes that
//! name files, the record form, monitoring links and the events.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::stream::Stream;

/// `len` bytes that no sniffer recognises and that do not repeat within a chunk.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut bytes = Vec::with_capacity(len);
    // A leading zero byte: never text, never a known magic number.
    bytes.push(0);
    while bytes.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        bytes.extend_from_slice(&state.to_be_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A `file` part named `filename`, sent with the raw UTF-8 name as browsers do, declaring
/// `declared` as its type.
fn file_part(bytes: Vec<u8>, filename: &str, declared: &str) -> Part {
    Part::bytes(bytes)
        .file_name(filename.to_owned())
        .mime_str(declared)
        .unwrap()
}

impl TestApp {
    /// Uploads `form` to `path` (an `…/attachments` collection) with `token`.
    async fn upload(&self, path: &str, token: &str, form: Form) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .multipart(form.percent_encode_noop())
            .send()
            .await
            .expect("upload")
    }

    /// Uploads one file to incident `id` and returns its record.
    async fn attach(&self, token: &str, id: &Value, part: Part, visibility: Option<&str>) -> Value {
        let mut form = Form::new();
        if let Some(visibility) = visibility {
            form = form.text("visibility", visibility.to_owned());
        }
        let body = self
            .upload(
                &format!("/api/v1/incidents/{id}/attachments"),
                token,
                form.part("file", part),
            )
            .created()
            .await;
        assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
        body["items"][0].clone()
    }

    /// Uploads one small text file to incident `id` and returns its record.
    async fn attach_text(
        &self,
        token: &str,
        id: &Value,
        filename: &str,
        body: &[u8],
        visibility: Option<&str>,
    ) -> Value {
        let part = file_part(body.to_vec(), filename, "text/plain");
        self.attach(token, id, part, visibility).await
    }

    /// `DELETE /attachments/{id}`.
    async fn remove(&self, token: &str, id: &Value) -> Response {
        let path = format!("/api/v1/attachments/{id}");
        self.send(Method::DELETE, &path, Some(token), None).await
    }

    /// `GET /attachments/{id}/content` with extra headers.
    async fn download(&self, token: &str, id: &Value, headers: &[(&str, &str)]) -> Response {
        let mut request = self
            .client
            .get(self.url(&format!("/api/v1/attachments/{id}/content")))
            .bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("download")
    }
}

/// The name in `filename*=UTF-8''…` (RFC 8187) of a `Content-Disposition`.
fn filename_star(disposition: &str) -> String {
    let encoded = disposition
        .split("filename*=UTF-8''")
        .nth(1)
        .expect("filename*")
        .split(';')
        .next()
        .unwrap();
    form_urlencoded::parse(format!("n={encoded}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// An open incident of the cast's organisation, reported by its customer user.
async fn open_incident(app: &TestApp, c: &Cast) -> Value {
    app.create_incident(&c.portal, json!({"title": "收费窗口打印机卡纸"}))
        .await
}

fn rows(db: &str, sql: &str) -> i64 {
    count_in(db, &format!("SELECT count(*) AS n FROM {sql}"))
}

#[tokio::test]
async fn a_binary_file_round_trips_whole_and_in_ranges() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    // Three chunks and a bit, so that ranges cross chunk boundaries.
    let bytes = noise(3 * 512 * 1024 + 777, 1);
    let name = "事件记录单（扫描）2026-12-07.bin";
    let record = app
        .attach(
            &c.desk,
            &incident["id"],
            file_part(bytes.clone(), name, "application/pdf"),
            None,
        )
        .await;
    assert_eq!(
        record["owner"],
        json!({"kind": "incident", "id": incident["id"]})
    );
    assert_eq!(record["filename"], name);
    assert_eq!(record["size"], bytes.len());
    assert_eq!(record["sha256"], sha256_hex(&bytes));
    assert_eq!(record["content_type"], "application/octet-stream");
    assert_eq!(
        record["visibility"], "internal",
        "staff upload internal files by default"
    );
    assert_eq!(record["uploaded_by"], c.desk_id);

    let shown = app
        .get(&format!("/api/v1/attachments/{}", record["id"]), &c.desk)
        .ok()
        .await;
    assert_eq!(shown, record);
    let listed = app
        .get(
            &format!("/api/v1/incidents/{}/attachments", incident["id"]),
            &c.desk,
        )
        .ok()
        .await;
    assert_eq!(listed["items"], json!([record]));
    assert_eq!(listed["next_cursor"], Value::Null);

    let whole = app.download(&c.desk, &record["id"], &[]).await;
    assert_eq!(whole.status(), StatusCode::OK);
    let disposition = header(&whole, "content-disposition");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert_eq!(filename_star(&disposition), name, "{disposition}");
    assert_eq!(header(&whole, "x-content-type-options"), "nosniff");
    assert!(header(&whole, "content-security-policy").starts_with("sandbox"));
    assert_eq!(header(&whole, "content-type"), "application/octet-stream");
    assert_eq!(
        header(&whole, "etag"),
        format!("\"{}\"", sha256_hex(&bytes))
    );
    assert_eq!(header(&whole, "accept-ranges"), "bytes");
    assert_eq!(header(&whole, "content-length"), bytes.len().to_string());
    let body = whole.bytes().await.unwrap();
    assert_eq!(sha256_hex(&body), sha256_hex(&bytes));
    assert!(body[..] == bytes[..]);

    // Across the first chunk boundary, a suffix, and an open end.
    for (range, from, to) in [
        ("bytes=524200-524400", 524_200, 524_400),
        ("bytes=-100", bytes.len() - 100, bytes.len() - 1),
        ("bytes=1572860-", 1_572_860, bytes.len() - 1),
        ("bytes=0-0", 0, 0),
        ("bytes=-9000000", 0, bytes.len() - 1),
    ] {
        let part = app
            .download(&c.desk, &record["id"], &[("Range", range)])
            .await;
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&part, "content-range"),
            format!("bytes {from}-{to}/{}", bytes.len())
        );
        let got = part.bytes().await.unwrap();
        assert!(got[..] == bytes[from..=to], "{range}");
    }
    let beyond = app
        .download(&c.desk, &record["id"], &[("Range", "bytes=9000000-")])
        .await;
    assert_eq!(
        header(&beyond, "content-range"),
        format!("bytes */{}", bytes.len())
    );
    expect_problem(beyond, "range_not_satisfiable").await;
    // A range for another version of the file is ignored: the whole current file comes.
    let stale = app
        .download(
            &c.desk,
            &record["id"],
            &[("Range", "bytes=0-9"), ("If-Range", "\"0000\"")],
        )
        .await;
    assert_eq!(stale.status(), StatusCode::OK);
    let etag = format!("\"{}\"", sha256_hex(&bytes));
    let unchanged = app
        .download(&c.desk, &record["id"], &[("If-None-Match", &etag)])
        .await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);

    // HEAD: the download's headers, no bytes.
    let head = app
        .client
        .head(app.url(&format!("/api/v1/attachments/{}/content", record["id"])))
        .bearer_auth(&c.desk)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), bytes.len().to_string());
    assert_eq!(header(&head, "etag"), etag);
    assert!(header(&head, "content-disposition").starts_with("attachment"));
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_bytes_decide_the_type_whatever_the_client_claims() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    let page = b"<!DOCTYPE html><html><body><script>fetch('/api/v1/users')</script></body></html>";
    let html = app
        .attach(
            &c.desk,
            &incident["id"],
            file_part(page.to_vec(), "photo.png", "image/png"),
            None,
        )
        .await;
    assert_eq!(html["content_type"], "text/html");
    let served = app.download(&c.desk, &html["id"], &[]).await;
    assert_eq!(header(&served, "content-type"), "text/html; charset=utf-8");
    assert!(header(&served, "content-disposition").starts_with("attachment"));
    assert!(header(&served, "content-security-policy").starts_with("sandbox"));
    assert_eq!(header(&served, "x-content-type-options"), "nosniff");

    let mut program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec();
    program.resize(512, 0);
    let exe = app
        .attach(
            &c.desk,
            &incident["id"],
            file_part(program, "报表.pdf", "application/pdf"),
            None,
        )
        .await;
    assert_eq!(
        exe["content_type"],
        "application/vnd.microsoft.portable-executable"
    );
    let served = app.download(&c.desk, &exe["id"], &[]).await;
    assert_eq!(header(&served, "content-type"), "application/octet-stream");

    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00";
    let image = app
        .attach(
            &c.desk,
            &incident["id"],
            file_part(png.to_vec(), "屏幕截图.txt", "text/plain"),
            None,
        )
        .await;
    assert_eq!(image["content_type"], "image/png");
    let log = "2026-12-07 09:12:01 ERROR 收费模块 数据库连接超时\n".repeat(50);
    let text = app
        .attach(
            &c.desk,
            &incident["id"],
            file_part(log.into_bytes(), "his.log", "application/x-msdownload"),
            None,
        )
        .await;
    assert_eq!(text["content_type"], "text/plain");
    let served = app.download(&c.desk, &text["id"], &[]).await;
    assert_eq!(header(&served, "content-type"), "text/plain; charset=utf-8");
}

#[tokio::test]
async fn filenames_keep_no_path_control_character_or_dot_dot() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    for (given, kept) in [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("report\t.txt", "report.txt"),
        ("....", "attachment"),
        ("王医生 的 日志.log", "王医生 的 日志.log"),
    ] {
        let record = app
            .attach(
                &c.desk,
                &incident["id"],
                file_part(b"x".to_vec(), given, "text/plain"),
                None,
            )
            .await;
        assert_eq!(record["filename"], kept, "{given:?}");
        let served = app.download(&c.desk, &record["id"], &[]).await;
        let disposition = header(&served, "content-disposition");
        assert!(!disposition.contains(".."), "{disposition}");
        assert!(!disposition.contains('/'), "{disposition}");
    }
}

/// Writes the start of a multipart upload of one file to `address` by hand: the headers announce
/// `declared` bytes of file, and `sent` bytes of it follow. Returns the open connection.
fn start_upload(address: &str, path: &str, token: &str, declared: usize, sent: usize) -> TcpStream {
    let host = address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let boundary = "XyZzY-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() + declared + tail.len();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n{head}"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let body = noise(sent, 7);
    stream.write_all(&body).unwrap();
    stream
}

/// The status line of the answer on `stream`.
fn status_line(stream: &mut TcpStream) -> String {
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..read])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_oversized_file_is_refused_before_the_rest_of_it_is_read() {
    let app = TestApp::spawn_with(&[("MAX_ATTACHMENT_SIZE", "1MB")]).await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    let path = format!("/api/v1/incidents/{}/attachments", incident["id"]);
    let (address, token) = (app.address.clone(), c.desk.clone());
    // 1.2 MB of a 30 MB file: the answer comes while 28.8 MB have not been sent.
    let status = tokio::task::spawn_blocking(move || {
        let mut stream = start_upload(&address, &path, &token, 30_000_000, 1_200_000);
        status_line(&mut stream)
    })
    .await
    .unwrap();
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
    assert_eq!(
        rows(&app.database, "attachment_contents"),
        0,
        "nothing of it is kept"
    );
    assert_eq!(rows(&app.database, "attachment_chunks"), 0);

    // More than fifty such files could take is refused before a byte of the body.
    let path = format!("/api/v1/incidents/{}/attachments", incident["id"]);
    let (address, token) = (app.address.clone(), c.desk.clone());
    let status = tokio::task::spawn_blocking(move || {
        let mut stream = start_upload(&address, &path, &token, 200_000_000, 0);
        status_line(&mut stream)
    })
    .await
    .unwrap();
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");

    // Through a client library: the problem body says what the limit is.
    let response = app
        .upload(
            &format!("/api/v1/incidents/{}/attachments", incident["id"]),
            &c.desk,
            Form::new().part(
                "file",
                file_part(noise(1_000_001, 3), "a.bin", "application/zip"),
            ),
        )
        .await;
    let problem = expect_problem(response, "payload_too_large").await;
    assert!(problem["detail"].as_str().unwrap().contains("1000000"));
    // Exactly the limit is fine.
    app.attach(
        &c.desk,
        &incident["id"],
        file_part(noise(1_000_000, 3), "a.bin", "x/y"),
        None,
    )
    .await;
}

#[tokio::test]
async fn fifty_files_per_incident_and_the_fifty_first_is_refused() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    let path = format!("/api/v1/incidents/{}/attachments", incident["id"]);
    let mut form = Form::new();
    for n in 0..49 {
        form = form.part(
            "file",
            file_part(
                format!("第{n}张").into_bytes(),
                &format!("{n}.txt"),
                "text/plain",
            ),
        );
    }
    let stored = app.upload(&path, &c.desk, form).created().await;
    assert_eq!(stored["items"].as_array().unwrap().len(), 49);
    // Two more at once would be 51: neither is kept.
    let two = Form::new()
        .part("file", file_part(b"a".to_vec(), "a.txt", "text/plain"))
        .part("file", file_part(b"b".to_vec(), "b.txt", "text/plain"));
    expect_problem(app.upload(&path, &c.desk, two).await, "attachment_limit").await;
    app.attach_text(&c.desk, &incident["id"], "50.txt", b"fifty", None)
        .await;
    let over = Form::new().part("file", file_part(b"51".to_vec(), "51.txt", "text/plain"));
    expect_problem(app.upload(&path, &c.desk, over).await, "attachment_limit").await;
    let listed = app.get(&path, &c.desk).ok().await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 50);
    assert_eq!(
        rows(&app.database, "attachment_contents WHERE sha256 IS NULL"),
        0,
        "refused uploads leave no bytes behind"
    );
}

#[tokio::test]
async fn customers_see_public_files_of_their_own_organisation_only() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    let id = &incident["id"];
    let internal = app
        .attach_text(&c.desk, id, "诊断.txt", b"internal", None)
        .await;
    let public = app
        .attach_text(&c.desk, id, "说明.txt", b"public", Some("public"))
        .await;
    let own = app
        .attach_text(&c.portal, id, "截图.txt", b"mine", None)
        .await;
    assert_eq!(
        own["visibility"], "public",
        "customers upload public files by default"
    );

    let seen = app
        .get(&format!("/api/v1/incidents/{id}/attachments"), &c.portal)
        .ok()
        .await;
    let ids: Vec<&Value> = pluck(&seen["items"], "id");
    assert_eq!(ids, [&public["id"], &own["id"]]);
    for path in [
        format!("/api/v1/attachments/{}", internal["id"]),
        format!("/api/v1/attachments/{}/content", internal["id"]),
    ] {
        expect_problem(app.get(&path, &c.portal).await, "not_found").await;
    }
    app.get(
        &format!("/api/v1/attachments/{}/content", public["id"]),
        &c.portal,
    )
    .await
    .error_for_status()
    .unwrap();
    let form = Form::new()
        .text("visibility", "internal")
        .part("file", file_part(b"x".to_vec(), "x.txt", "text/plain"));
    expect_problem(
        app.upload(
            &format!("/api/v1/incidents/{id}/attachments"),
            &c.portal,
            form,
        )
        .await,
        "forbidden",
    )
    .await;

    // Another organisation learns nothing, not even that the incident or its files exist.
    let admin = app.admin_token().await;
    let other = app.create_customer(&admin, "OTHER").await;
    let (_, stranger) = app
        .create_user(&admin, "stranger", &["customer"], Some(other))
        .await;
    for path in [
        format!("/api/v1/incidents/{id}/attachments"),
        format!("/api/v1/attachments/{}", public["id"]),
        format!("/api/v1/attachments/{}/content", public["id"]),
    ] {
        expect_problem(app.get(&path, &stranger).await, "not_found").await;
    }
    let form = Form::new().part("file", file_part(b"x".to_vec(), "x.txt", "text/plain"));
    expect_problem(
        app.upload(
            &format!("/api/v1/incidents/{id}/attachments"),
            &stranger,
            form,
        )
        .await,
        "not_found",
    )
    .await;
    expect_problem(app.remove(&stranger, &public["id"]).await, "not_found").await;

    // The customer removes their own file, not the desk's.
    expect_problem(app.remove(&c.portal, &public["id"]).await, "forbidden").await;
    let removed = app.remove(&c.portal, &own["id"]).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);

    // The customer's journal shows the public uploads and removals, never the internal one.
    let history = app
        .get(&format!("/api/v1/incidents/{id}/history"), &c.portal)
        .ok()
        .await;
    let comments: Vec<String> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "attach" || e["action"] == "detach")
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["comment"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        comments,
        ["attach 说明.txt", "attach 截图.txt", "detach 截图.txt"]
    );
}

#[tokio::test]
async fn files_are_removed_while_open_and_a_closed_incident_keeps_its_own() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = app.resolved_incident(&c).await;
    let id = &incident["id"];
    let kept = app
        .attach_text(&c.portal, id, "签字.txt", b"signed form", None)
        .await;
    let dropped = app
        .attach(
            &c.desk,
            id,
            file_part(noise(4000, 9), "tmp.bin", "x/y"),
            None,
        )
        .await;
    let gone = app.remove(&c.l2, &dropped["id"]).await;
    assert_eq!(
        gone.status(),
        StatusCode::NO_CONTENT,
        "staff remove anyone's file"
    );
    expect_problem(
        app.get(&format!("/api/v1/attachments/{}", dropped["id"]), &c.desk)
            .await,
        "not_found",
    )
    .await;
    assert_eq!(
        rows(&app.database, "attachment_contents"),
        1,
        "the bytes no record names went with the record"
    );

    // Two removals of one file at once: one removes it, the other finds nothing.
    let twice = app
        .attach_text(&c.desk, id, "twice.txt", b"twice", None)
        .await;
    let (first, second) = tokio::join!(
        app.remove(&c.desk, &twice["id"]),
        app.remove(&c.l2, &twice["id"])
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [204, 404]);
    let history = app
        .get(&format!("/api/v1/incidents/{id}/history"), &c.desk)
        .ok()
        .await;
    let detached = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "detach" && e["comment"] == "twice.txt")
        .count();
    assert_eq!(detached, 1, "one removal, one history entry");

    app.act_ok(&c.portal, id, "confirm", json!({})).await;
    app.act_ok(&c.desk, id, "close", json!({"closure_code": "resolved"}))
        .await;
    let form = Form::new().part(
        "file",
        file_part(b"late".to_vec(), "late.txt", "text/plain"),
    );
    expect_problem(
        app.upload(
            &format!("/api/v1/incidents/{id}/attachments"),
            &c.desk,
            form,
        )
        .await,
        "incident_closed",
    )
    .await;
    for token in [&c.desk, &c.portal] {
        expect_problem(app.remove(token, &kept["id"]).await, "incident_closed").await;
    }
    let body = app
        .download(&c.portal, &kept["id"], &[])
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"signed form");
}

#[tokio::test]
async fn the_same_file_is_stored_once_and_goes_with_its_last_record() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let first = open_incident(&app, &c).await;
    let second = open_incident(&app, &c).await;
    let bytes = noise(700_000, 11);
    // Two identical uploads at once, and a third later to another incident.
    let (a, b) = tokio::join!(
        app.attach(
            &c.desk,
            &first["id"],
            file_part(bytes.clone(), "a.bin", "x/y"),
            None
        ),
        app.attach(
            &c.desk,
            &first["id"],
            file_part(bytes.clone(), "b.bin", "x/y"),
            None
        ),
    );
    let c3 = app
        .attach(
            &c.portal,
            &second["id"],
            file_part(bytes.clone(), "c.bin", "x/y"),
            None,
        )
        .await;
    assert_eq!(a["sha256"], b["sha256"]);
    assert_eq!(a["sha256"], c3["sha256"]);
    assert_eq!(rows(&app.database, "attachment_contents"), 1);
    assert_eq!(rows(&app.database, "attachment_chunks"), 2);
    assert_eq!(rows(&app.database, "attachments"), 3);

    for file in [&a, &b] {
        let response = app.remove(&c.desk, &file["id"]).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            rows(&app.database, "attachment_contents"),
            1,
            "c.bin still names it"
        );
    }
    let body = app
        .download(&c.portal, &c3["id"], &[])
        .await
        .bytes()
        .await
        .unwrap();
    assert!(body[..] == bytes[..]);
    let response = app.remove(&c.portal, &c3["id"]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(rows(&app.database, "attachment_contents"), 0);
    assert_eq!(rows(&app.database, "attachment_chunks"), 0);
}

#[tokio::test]
async fn a_server_killed_mid_upload_leaves_no_record_without_bytes_nor_bytes_without_a_record() {
    // This instance sweeps often and treats uploads older than two seconds as abandoned.
    let app = TestApp::spawn_with(&[
        ("ATTACHMENT_UPLOAD_TIMEOUT", "2s"),
        ("ATTACHMENT_SWEEP_INTERVAL", "200ms"),
    ])
    .await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    let finished = app
        .attach(
            &c.desk,
            &incident["id"],
            file_part(noise(600_000, 5), "done.bin", "x/y"),
            None,
        )
        .await;

    // A second instance, a real process, takes an upload and dies in the middle of it.
    let (mut child, address) = start_binary(&app.database, &[]);
    let path = format!("/api/v1/incidents/{}/attachments", incident["id"]);
    let token = c.desk.clone();
    let connection = tokio::task::spawn_blocking(move || {
        start_upload(&address, &path, &token, 3_000_000, 1_600_000)
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Chunks of the unfinished file (the finished one has two).
    while rows(&app.database, "attachment_chunks") < 5 {
        assert!(
            Instant::now() < deadline,
            "the upload's chunks never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(connection);
    assert_eq!(
        rows(&app.database, "attachments"),
        1,
        "no record without its bytes"
    );
    assert_eq!(
        rows(&app.database, "attachment_contents WHERE sha256 IS NULL"),
        1,
        "the dead upload's bytes are still there"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    while rows(&app.database, "attachment_contents") > 1 {
        assert!(
            Instant::now() < deadline,
            "the sweep never removed the abandoned bytes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        rows(&app.database, "attachment_chunks"),
        2,
        "only the finished file's chunks"
    );
    assert_eq!(
        rows(
            &app.database,
            "attachment_contents c WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.content_id = c.id)"
        ),
        0,
        "no bytes without a record"
    );
    let body = app
        .download(&c.desk, &finished["id"], &[])
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&body), finished["sha256"].as_str().unwrap());
}

#[tokio::test]
async fn notes_name_attachments_of_their_incident() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    let other = open_incident(&app, &c).await;
    let id = &incident["id"];
    let public = app
        .attach_text(&c.portal, id, "error.log", b"log", None)
        .await;
    let internal = app
        .attach_text(&c.desk, id, "dump.txt", b"dump", None)
        .await;
    let elsewhere = app
        .attach_text(&c.desk, &other["id"], "else.txt", b"else", None)
        .await;
    let note = app
        .post(
            &format!("/api/v1/incidents/{id}/notes"),
            &c.portal,
            json!({"body": "日志见附件", "attachment_ids": [public["id"]]}),
        )
        .created()
        .await;
    assert_eq!(note["attachment_ids"], json!([public["id"]]));
    let internal_note = app
        .post(
            &format!("/api/v1/incidents/{id}/notes"),
            &c.desk,
            json!({"body": "内存转储", "visibility": "internal", "attachment_ids": [internal["id"], public["id"]]}),
        )
        .created()
        .await;
    assert_eq!(internal_note["attachment_ids"].as_array().unwrap().len(), 2);
    for (token, body) in [
        (
            &c.desk,
            json!({"body": "x", "visibility": "public", "attachment_ids": [internal["id"]]}),
        ),
        (
            &c.desk,
            json!({"body": "x", "attachment_ids": [elsewhere["id"]]}),
        ),
        (&c.portal, json!({"body": "x", "attachment_ids": [999_999]})),
    ] {
        let problem = expect_problem(
            app.post(&format!("/api/v1/incidents/{id}/notes"), token, body)
                .await,
            "validation_failed",
        )
        .await;
        assert_eq!(error_fields(&problem), ["attachment_ids"]);
    }
    let notes = app
        .get(&format!("/api/v1/incidents/{id}/notes"), &c.portal)
        .ok()
        .await;
    assert_eq!(notes.as_array().unwrap().len(), 1);
    assert_eq!(notes[0]["attachment_ids"], json!([public["id"]]));
}

#[tokio::test]
async fn coordination_tickets_and_knowledge_drafts_take_files_too() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    app.act_ok(&c.desk, &incident["id"], "accept", json!({}))
        .await;
    let ops_id = app.get("/api/v1/users/me", &c.ops).ok().await["id"].clone();
    let ticket = app
        .post(
            &format!("/api/v1/incidents/{}/coordination-tickets", incident["id"]),
            &c.manager,
            json!({"kind": "customer_issue", "assignee_id": ops_id,
                   "summary": "到现场更换打印机", "details": "收费窗口 3 号"}),
        )
        .created()
        .await;
    let ticket_path = format!("/api/v1/coordination-tickets/{}/attachments", ticket["id"]);
    let form = Form::new().part(
        "file",
        file_part(b"site photo".to_vec(), "现场.txt", "text/plain"),
    );
    let stored = app.upload(&ticket_path, &c.ops, form).created().await;
    let file = &stored["items"][0];
    assert_eq!(
        file["owner"],
        json!({"kind": "coordination_ticket", "id": ticket["id"]})
    );
    assert_eq!(
        app.get(&ticket_path, &c.desk).ok().await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    expect_problem(app.get(&ticket_path, &c.portal).await, "forbidden").await;
    expect_problem(
        app.get(&format!("/api/v1/attachments/{}", file["id"]), &c.portal)
            .await,
        "not_found",
    )
    .await;
    // A role that reads no ticket's files cannot remove one, nor learn that it exists.
    for token in [&c.portal, &c.admin] {
        expect_problem(app.remove(token, &file["id"]).await, "not_found").await;
    }
    let history = app
        .get(
            &format!("/api/v1/coordination-tickets/{}/history", ticket["id"]),
            &c.desk,
        )
        .ok()
        .await;
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "attach"),
        "{history}"
    );

    let draft = app
        .post(
            "/api/v1/knowledge",
            &c.desk,
            json!({"title": "打印机卡纸", "symptom": "卡纸", "solution": "更换搓纸轮", "subcategory": "upgrade_error"}),
        )
        .created()
        .await;
    let entry_path = format!("/api/v1/knowledge/{}/attachments", draft["id"]);
    let form = || {
        Form::new().text("visibility", "public").part(
            "file",
            file_part(b"steps".to_vec(), "步骤.txt", "text/plain"),
        )
    };
    expect_problem(app.upload(&entry_path, &c.l2, form()).await, "forbidden").await;
    expect_problem(
        app.upload(&entry_path, &c.portal, form()).await,
        "not_found",
    )
    .await;
    let stored = app.upload(&entry_path, &c.desk, form()).created().await;
    let guide = &stored["items"][0];
    expect_problem(app.get(&entry_path, &c.portal).await, "not_found").await;
    app.post(
        &format!("/api/v1/knowledge/{}/submit", draft["id"]),
        &c.desk,
        json!({}),
    )
    .await
    .error_for_status()
    .unwrap();
    expect_problem(
        app.upload(&entry_path, &c.desk, form()).await,
        "illegal_transition",
    )
    .await;
    app.post(
        &format!("/api/v1/knowledge/{}/approve", draft["id"]),
        &c.l2,
        json!({}),
    )
    .await
    .error_for_status()
    .unwrap();
    let seen = app.get(&entry_path, &c.portal).ok().await;
    assert_eq!(pluck(&seen["items"], "id"), [&guide["id"]]);
    let body = app
        .download(&c.portal, &guide["id"], &[])
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"steps");
}

#[tokio::test]
async fn uploads_that_are_not_a_form_of_files_are_refused() {
    let app = TestApp::spawn().await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    let path = format!("/api/v1/incidents/{}/attachments", incident["id"]);
    expect_problem(
        app.post(&path, &c.desk, json!({"file": "x"})).await,
        "unsupported_media_type",
    )
    .await;
    let problem = expect_problem(
        app.upload(&path, &c.desk, Form::new().text("visibility", "public"))
            .await,
        "validation_failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["file"]);
    let unknown = Form::new().text("comment", "hi");
    let problem = expect_problem(
        app.upload(&path, &c.desk, unknown).await,
        "validation_failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["comment"]);
    // `visibility` after the files still applies to them.
    let late = Form::new()
        .part("file", file_part(b"x".to_vec(), "x.txt", "text/plain"))
        .text("visibility", "public");
    let stored = app.upload(&path, &c.desk, late).created().await;
    assert_eq!(stored["items"][0]["visibility"], "public");
    // A customer's internal file is refused at the end, and its bytes are not kept.
    let late = Form::new()
        .part("file", file_part(noise(700_000, 4), "x.bin", "x/y"))
        .text("visibility", "internal");
    expect_problem(app.upload(&path, &c.portal, late).await, "forbidden").await;
    let bad = Form::new()
        .text("visibility", "secret")
        .part("file", file_part(b"x".to_vec(), "x.txt", "text/plain"));
    let problem = expect_problem(app.upload(&path, &c.desk, bad).await, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["visibility"]);
    let missing = app
        .upload(
            "/api/v1/incidents/999999/attachments",
            &c.desk,
            Form::new().part("file", file_part(b"x".to_vec(), "x.txt", "text/plain")),
        )
        .await;
    expect_problem(missing, "not_found").await;
    expect_problem(
        app.get("/api/v1/attachments/999999", &c.desk).await,
        "not_found",
    )
    .await;
    // Only the one accepted file is stored.
    assert_eq!(rows(&app.database, "attachments"), 1);
    assert_eq!(
        rows(&app.database, "attachment_contents"),
        1,
        "refusals keep no bytes"
    );
    assert_eq!(rows(&app.database, "attachment_chunks"), 1);
}

#[tokio::test]
async fn monitoring_links_and_public_files_are_on_the_record_form() {
    let app = TestApp::spawn().await;
    let m = app.monitoring().await;
    let event = json!({
        "event_action": "trigger",
        "dedup_key": "disk/his-db-01",
        "payload": {"summary": "Disk almost full on his-db-01", "source": "his-db-01",
                    "severity": "warning", "custom_details": {"customer": "QD-01"}},
        "links": [{"href": "https://grafana.example/d/his", "text": "磁盘面板"},
                  {"href": "javascript:alert(1)", "text": "evil"}],
        "images": [{"src": "https://grafana.example/render/his.png", "alt": "磁盘趋势"}]
    });
    let accepted = app
        .send(Method::POST, "/api/v1/events", Some(&m.token), Some(event))
        .await;
    let accepted = expect_json(accepted, StatusCode::ACCEPTED).await;
    let id = accepted["incident_id"].clone();
    let incident = app
        .get(&format!("/api/v1/incidents/{id}"), &m.desk)
        .ok()
        .await;
    assert_eq!(
        incident["links"],
        json!([{"href": "https://grafana.example/d/his", "text": "磁盘面板"},
               {"href": "https://grafana.example/render/his.png", "text": "磁盘趋势"}])
    );
    app.attach_text(&m.desk, &id, "df-输出.txt", b"df -h", Some("public"))
        .await;
    app.attach_text(&m.desk, &id, "内部诊断.txt", b"secret", None)
        .await;
    let form = app
        .get_accepting(
            &format!("/api/v1/incidents/{id}/record"),
            &m.desk,
            "text/html",
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains("df-输出.txt"), "the public file is listed");
    assert!(
        !form.contains("内部诊断.txt"),
        "internal files are not on the customer's form"
    );
    assert!(form.contains("https://grafana.example/d/his"));
    assert!(!form.contains("javascript:"));
}

#[tokio::test]
async fn uploads_and_removals_are_events_on_the_stream_and_for_webhooks() {
    let app = TestApp::spawn_with(&[("WEBHOOK_ALLOW_PRIVATE", "true")]).await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    let id = &incident["id"];
    let hook = app
        .post(
            "/api/v1/webhooks",
            &c.admin,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["attachment.created", "attachment.deleted"],
                   "secret": "a-webhook-secret-of-some-length"}),
        )
        .created()
        .await;
    let query = format!("?types=attachment.created,attachment.deleted&incident_id={id}");
    let mut desk = Stream::open(&app, &c.desk, &query, None).await;
    let mut portal = Stream::open(&app, &c.portal, &query, None).await;

    let internal = app.attach_text(&c.desk, id, "内部.txt", b"x", None).await;
    let public = app
        .attach_text(&c.desk, id, "公开.txt", b"y", Some("public"))
        .await;
    let removed = app.remove(&c.desk, &public["id"]).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);

    let seen: Vec<(String, Value)> = [desk.next().await, desk.next().await, desk.next().await]
        .into_iter()
        .map(|e| (e.event, e.data["data"]["attachment"]["id"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("attachment.created".to_owned(), internal["id"].clone()),
            ("attachment.created".to_owned(), public["id"].clone()),
            ("attachment.deleted".to_owned(), public["id"].clone()),
        ]
    );
    let first = portal.next().await;
    assert_eq!(first.event, "attachment.created");
    assert_eq!(
        first.data["data"]["attachment"]["id"], public["id"],
        "never the internal file"
    );
    assert_eq!(first.data["incident_id"], *id);
    assert_eq!(portal.next().await.event, "attachment.deleted");

    let deliveries = app
        .get(
            &format!("/api/v1/webhooks/{}/deliveries", hook["id"]),
            &c.admin,
        )
        .ok()
        .await;
    assert_eq!(deliveries["items"].as_array().unwrap().len(), 3);
}

/// The settings of `s3`, borrowed as the test servers take them, with `extra`.
fn with_s3<'a>(
    s3: &'a [(&'static str, String)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    s3.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(extra.iter().copied())
        .collect()
}

#[tokio::test]
async fn files_in_an_s3_compatible_store_round_trip_and_go_with_their_last_record() {
    let s3 = S3Server::start();
    let settings = s3.settings("desk/files");
    let app = TestApp::spawn_with(&with_s3(&settings, &[])).await;
    let c = app.cast().await;
    let first = open_incident(&app, &c).await;
    let second = open_incident(&app, &c).await;
    let bytes = noise(2 * 512 * 1024 + 4321, 21);
    let a = app
        .attach(
            &c.desk,
            &first["id"],
            file_part(bytes.clone(), "抓包.pcap", "x/y"),
            None,
        )
        .await;
    let content: i64 = count_in(
        &app.database,
        "SELECT max(id) AS n FROM attachment_contents",
    );
    assert_eq!(
        s3.objects("desk/files"),
        [0, 1, 2].map(|seq| format!("desk/files/{content}/{seq}")),
        "three chunks, as objects named by content and chunk"
    );
    assert_eq!(
        rows(&app.database, "attachment_chunks"),
        0,
        "no bytes in the database"
    );

    let whole = app
        .download(&c.desk, &a["id"], &[])
        .await
        .bytes()
        .await
        .unwrap();
    assert!(whole[..] == bytes[..]);
    let part = app
        .download(&c.desk, &a["id"], &[("Range", "bytes=524000-1049000")])
        .await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert!(part.bytes().await.unwrap()[..] == bytes[524_000..=1_049_000]);

    // The same bytes again: stored once, the second upload's objects dropped.
    let b = app
        .attach(
            &c.portal,
            &second["id"],
            file_part(bytes.clone(), "again.pcap", "x/y"),
            None,
        )
        .await;
    assert_eq!(b["sha256"], a["sha256"]);
    assert_eq!(s3.objects("desk/files").len(), 3);
    for (token, file) in [(&c.desk, &a), (&c.portal, &b)] {
        let response = app.remove(token, &file["id"]).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    assert!(
        s3.objects("desk/files").is_empty(),
        "the objects went with the last record"
    );
}

#[tokio::test]
async fn with_an_s3_store_a_server_killed_mid_upload_leaves_no_object_behind() {
    let s3 = S3Server::start();
    let settings = s3.settings("files");
    let app = TestApp::spawn_with(&with_s3(
        &settings,
        &[
            ("ATTACHMENT_UPLOAD_TIMEOUT", "2s"),
            ("ATTACHMENT_SWEEP_INTERVAL", "200ms"),
        ],
    ))
    .await;
    let c = app.cast().await;
    let incident = open_incident(&app, &c).await;
    let kept = app
        .attach_text(&c.desk, &incident["id"], "kept.txt", b"kept", None)
        .await;

    let (mut child, address) = start_binary(&app.database, &with_s3(&settings, &[]));
    let path = format!("/api/v1/incidents/{}/attachments", incident["id"]);
    let token = c.desk.clone();
    let connection = tokio::task::spawn_blocking(move || {
        start_upload(&address, &path, &token, 3_000_000, 1_600_000)
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s3.objects("files").len() < 4 {
        assert!(
            Instant::now() < deadline,
            "the upload's chunks never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(connection);
    assert_eq!(
        rows(&app.database, "attachments"),
        1,
        "no record without its bytes"
    );

    // An object whose row is gone (a removal cut short before it reached the store).
    let stray = s3.bucket_dir().join("files/987654");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("0"), b"stray").unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let objects = s3.objects("files");
        let staged = rows(&app.database, "attachment_contents WHERE sha256 IS NULL");
        if staged == 0 && objects.len() == 1 {
            assert!(objects[0].ends_with("/0"), "{objects:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sweep left {staged} staged rows and objects {objects:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = app
        .download(&c.desk, &kept["id"], &[])
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"kept");
}
