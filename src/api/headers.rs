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

/// Swagger UI runs its own scripts and styles, all from this server; it sets inline styles and
/// draws icons from `data:` URIs. It calls only this server, and nobody may frame it (a framed
/// "Try it out" could be clicked for a signed-in desk user by another site).
const SWAGGER_UI_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; \
     object-src 'none'";

const SWAGGER_UI: &str = "/swagger-ui";

/// Adds `X-Content-Type-Options: nosniff` to every answer, a restrictive
/// `Content-Security-Policy` to every answer that has none of its own (Swagger UI's lets it
/// run, an attachment's download runs nothing in a sandbox, and no answer may be
/// framed; `X-Frame-Options: DENY` tells older browsers the same), and `Cache-Control: no-store` to
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
    // An answer that sets its own policy keeps it: attachments are served in a sandbox.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(if swagger {
                SWAGGER_UI_POLICY
            } else {
                CONTENT_SECURITY_POLICY
            }),
        );
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if authenticated && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}
