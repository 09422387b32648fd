//! The download of an attachment's bytes: always as a sandboxed attachment, with `ETag` and
//! `Range`.

use std::ops::RangeInclusive;

use actix_web::body::SizedStream;
use actix_web::http::Method;
use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse, route};
use http_range_header::RangeUnsatisfiableError;
use utoipa::ToSchema;

use crate::api::extract::AuthUser;
use crate::api::problems;
use crate::domain::attachment;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::chunks::CHUNK_BYTES;

use super::readable;

/// A file's bytes.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

/// An attachment's bytes
///
/// Always a download (`Content-Disposition: attachment`, with `filename*` for names beyond
/// ASCII), never shown in the desk's origin (`Content-Security-Policy: sandbox`,
/// `X-Content-Type-Options: nosniff`). `Content-Type` is the sniffed type; programs and
/// scripts come as `application/octet-stream`. `ETag` is the SHA-256 (`If-None-Match` answers
/// 304). `Range: bytes=a-b` (one range) answers 206 with that part, so an interrupted download
/// resumes; several ranges answer the whole file. `HEAD` answers the same headers without the
/// bytes (a client checking a file's size or `ETag` before downloading it).
///
/// Roles: as for the record.
///
/// Errors: 404 for no such file or one the caller may not see; 416 for a range beyond the end.
#[utoipa::path(
    get,
    path = "/attachments/{id}/content",
    tag = "attachments",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Attachment id"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023` or `bytes=-500`"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds"),
        ("If-Range" = Option<String>, Header, description = "Apply `Range` only while the file is this `ETag`")
    ),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream", body = FileBytes,
            headers(("ETag" = String, description = "SHA-256 of the bytes, quoted"),
                    ("Content-Disposition" = String, description = "attachment; filename=…; filename*=UTF-8''…"))),
        (status = 206, description = "The requested part", content_type = "application/octet-stream", body = FileBytes,
            headers(("Content-Range" = String, description = "bytes a-b/size"))),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 416, description = "The range lies beyond the end (`range_not_satisfiable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        problems::ReadErrors
    )
)]
#[route("/attachments/{id}/content", method = "GET", method = "HEAD")]
pub async fn download_attachment(
    http: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    let found = readable(&state, &caller, id.into_inner()).await?;
    let file = found.attachment;
    let etag = format!("\"{}\"", file.sha256);
    let size = file.size as u64;
    let headers = http.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(header::IF_NONE_MATCH).is_some_and(|tags| {
        tags.split(',')
            .any(|tag| tag.trim() == etag || tag.trim() == "*")
    }) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .finish());
    }
    let range_applies = text(header::IF_RANGE).is_none_or(|tag| tag.trim() == etag);
    let range = match text(header::RANGE).filter(|_| range_applies && size > 0) {
        None => None,
        Some(raw) => match http_range_header::parse_range_header(raw) {
            // A Range header that cannot be read is ignored (RFC 9110 §14.2).
            Err(_) => None,
            Ok(parsed) => match parsed.validate(size) {
                Ok(ranges) if ranges.len() == 1 => ranges.into_iter().next(),
                // Several ranges: the whole file, which a server may always send instead.
                Ok(_) => None,
                // A suffix longer than the file is the whole file (RFC 9110 §14.1.3).
                Err(RangeUnsatisfiableError::FileSuffixOutOfBounds) => Some(0..=size - 1),
                Err(_) => return Err(AppError::RangeNotSatisfiable { size }),
            },
        },
    };
    let part: RangeInclusive<u64> = range.clone().unwrap_or(0..=size.saturating_sub(1));
    let length = if size == 0 {
        0
    } else {
        part.end() - part.start() + 1
    };
    let mut response = match range {
        Some(_) => {
            let mut partial = HttpResponse::PartialContent();
            partial.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", part.start(), part.end()),
            ));
            partial
        }
        None => HttpResponse::Ok(),
    };
    response
        .insert_header((
            header::CONTENT_TYPE,
            attachment::served_type(&file.content_type),
        ))
        .insert_header(disposition(&file.filename))
        .insert_header((header::ETAG, etag))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'; frame-ancestors 'none'",
        ));
    if http.method() == Method::HEAD {
        // The length is announced; the bytes are neither read nor sent.
        let nothing = futures_util::stream::empty::<Result<Bytes, AppError>>();
        return Ok(response.body(SizedStream::new(length, nothing)));
    }
    let body = bytes_of(state.into_inner(), found.content_id, *part.start(), length);
    Ok(response.body(SizedStream::new(length, body)))
}

/// `Content-Disposition: attachment` naming `filename`: `filename` in ASCII for old clients and
/// `filename*` (RFC 6266 / 8187) with the name as given.
fn disposition(filename: &str) -> ContentDisposition {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut parameters = vec![DispositionParam::Filename(ascii)];
    if !filename.is_ascii() {
        parameters.push(DispositionParam::FilenameExt(ExtendedValue {
            charset: Charset::Ext("UTF-8".into()),
            language_tag: None,
            value: filename.as_bytes().to_vec(),
        }));
    }
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters,
    }
}

/// The bytes `start .. start + length` of content `content_id`, read a chunk at a time as the
/// client takes them.
fn bytes_of(
    state: std::sync::Arc<AppState>,
    content_id: i64,
    start: u64,
    length: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, AppError>> + 'static {
    let end = start + length;
    futures_util::stream::unfold(start, move |offset| {
        let state = state.clone();
        async move {
            if offset >= end {
                return None;
            }
            let chunk_end = (offset / CHUNK_BYTES as u64 + 1) * CHUNK_BYTES as u64;
            let take = (chunk_end.min(end) - offset) as usize;
            let read = state
                .chunks
                .read(content_id, offset, take)
                .await
                .map_err(AppError::from);
            match read {
                Ok(bytes) if bytes.len() == take => {
                    Some((Ok(Bytes::from(bytes)), offset + take as u64))
                }
                Ok(_) => Some((
                    Err(AppError::internal("stored bytes shorter than the record")),
                    end,
                )),
                Err(error) => Some((Err(error), end)),
            }
        }
    })
}
