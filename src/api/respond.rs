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

/// Which of `offered` (most preferred by the server first) the request's `Accept` header asks
/// for: the first the client ranks highest, the server's first without an `Accept`, 406
/// `not_acceptable` when it names none of them (RFC 9110 §12.5.1).
pub fn negotiate<'a>(
    request: &actix_web::HttpRequest,
    offered: &[&'a str],
) -> Result<&'a str, crate::error::AppError> {
    use actix_web::http::header::{Accept, Header, Quality};
    let refuse = || {
        crate::error::AppError::NotAcceptable(format!(
            "This resource is available as: {}.",
            offered.join(", ")
        ))
    };
    let accept = match Accept::parse(request) {
        Ok(accept) if !accept.is_empty() => accept,
        _ if request.headers().contains_key(header::ACCEPT) => return Err(refuse()),
        _ => return offered.first().copied().ok_or_else(refuse),
    };
    let (wanted, refused): (Vec<_>, Vec<_>) = accept
        .0
        .into_iter()
        .partition(|item| item.quality > Quality::ZERO);
    // `q=0` on a type itself excludes it even where a wildcard would take it.
    let excluded = |offer: &str| refused.iter().any(|item| item.item.essence_str() == offer);
    for range in Accept(wanted).ranked() {
        let found = offered
            .iter()
            .filter(|offer| !excluded(offer))
            .find(|offer| {
                let (kind, subtype) = offer.split_once('/').unwrap_or((offer, ""));
                (range.type_() == "*" || range.type_() == kind)
                    && (range.subtype() == "*" || range.subtype() == subtype)
            });
        if let Some(offer) = found {
            return Ok(offer);
        }
    }
    Err(refuse())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const OFFERED: &[&str] = &["application/json", "text/csv"];

    fn pick(accept: Option<&str>) -> Result<&'static str, String> {
        let mut request = TestRequest::default();
        if let Some(accept) = accept {
            request = request.insert_header((header::ACCEPT, accept));
        }
        negotiate(&request.to_http_request(), OFFERED).map_err(|e| e.code().to_owned())
    }

    #[test]
    fn the_clients_ranking_decides_and_wildcards_take_the_servers_first() {
        assert_eq!(pick(None), Ok("application/json"));
        assert_eq!(pick(Some("*/*")), Ok("application/json"));
        assert_eq!(pick(Some("text/csv")), Ok("text/csv"));
        assert_eq!(pick(Some("text/*")), Ok("text/csv"));
        assert_eq!(
            pick(Some("application/json;q=0.5, text/csv")),
            Ok("text/csv")
        );
        assert_eq!(pick(Some("text/csv;q=0, */*")), Ok("application/json"));
        assert_eq!(pick(Some("application/json;q=0, */*")), Ok("text/csv"));
    }

    #[test]
    fn nothing_acceptable_is_refused() {
        assert_eq!(pick(Some("image/png")), Err("not_acceptable".into()));
        assert_eq!(pick(Some("text/csv;q=0")), Err("not_acceptable".into()));
        assert_eq!(pick(Some("garbage")), Err("not_acceptable".into()));
    }
}
