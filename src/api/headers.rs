//! Security headers on every answer: browsers must not sniff a JSON answer into a script, load
//! anything an answer names, or keep an answer someone signed in to get.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

/// Nothing may be loaded, framed or submitted; inline styles only, for the printable record
/// form (《事件记录单》).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Swagger UI runs its own scripts and styles, so it keeps the browser's defaults.
const SWAGGER_UI: &str = "/swagger-ui";

/// Adds `X-Content-Type-Options: nosniff` to every answer, a restrictive
/// `Content-Security-Policy` to every answer but Swagger UI's, and `Cache-Control: no-store` to
/// answers to authenticated requests that do not set their own caching. The handlers and the
/// middleware inside turn their errors into answers, so errors get the headers too.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let swagger = req.path().starts_with(SWAGGER_UI);
    let authenticated = req.headers().contains_key(header::AUTHORIZATION);
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !swagger {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    if authenticated && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}
