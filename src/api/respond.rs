//! Responses that carry a resource's version: every mutable resource is sent with its
//! `ETag`, and a created one with its `Location` too (SPEC.md §10).

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::Serialize;

/// The ETag header value of a resource version.
pub fn etag(version: i32) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}

/// `200 OK` with the resource and its version as `ETag`.
pub fn versioned(version: i32, body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok().insert_header(etag(version)).json(body)
}

/// `201 Created` with the resource, its version as `ETag` and, when it has a URL of its own,
/// that URL as `Location`.
pub fn created(location: Option<String>, version: i32, body: impl Serialize) -> HttpResponse {
    let mut response = HttpResponse::Created();
    response.insert_header(etag(version));
    if let Some(location) = location {
        response.insert_header((header::LOCATION, location));
    }
    response.json(body)
}
