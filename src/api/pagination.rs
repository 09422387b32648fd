//! Cursor pagination of SPEC §10: `limit` (1–200, default 50) and an opaque `cursor`.

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::error::AppError;
use crate::store::{ChangesPage, ListPosition, PageRequest};

/// Text of a large page handed to the connection at a time; the server's connections gather
/// as much before they write (`startup::WRITE_BUFFER_BYTES`), so a buffer holds one piece.
pub const PIECE_BYTES: usize = 8 * 1024;

/// Pages of at most this many rows are sent in one piece; larger ones as they are serialised.
pub const WHOLE_PAGE_ROWS: usize = 64;

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;

/// A page of a list, and the cursor of the next page (`null` on the last page).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(example = "eyJhZnRlciI6NTB9")]
    pub next_cursor: Option<String>,
}

/// `limit` and `cursor` of every list (SPEC §10), read from the same query string as the
/// list's filters.
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page request of an id-ordered list.
    pub fn request(&self) -> Result<PageRequest, AppError> {
        page_request(self.limit, self.cursor.as_deref())
    }

    /// The page size asked for, 1–200 (default 50); anything else is a 422 on `limit`.
    pub fn limit(&self) -> Result<i64, AppError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=200).contains(&limit) {
            return Err(AppError::invalid_field(
                "limit",
                "range",
                "must be between 1 and 200",
            ));
        }
        Ok(limit)
    }
}

impl<T> Page<T> {
    /// The answer to a list that cannot hold anything for this caller.
    pub fn empty() -> Self {
        Page {
            items: vec![],
            next_cursor: None,
        }
    }
}

impl<T: Serialize + 'static> Page<T> {
    /// `200 OK` with this page as JSON, serialised a few rows at a time as the connection takes
    /// them (chunked), so no request holds its whole answer twice (rows and text) and no large
    /// buffer is allocated per request. `slot` is held until the last byte is handed over.
    ///
    /// A page of at most [`WHOLE_PAGE_ROWS`] rows is written in one piece, as sending a few
    /// pieces per answer halved the throughput of 50-row pages (`bench/ratios.sh`), and such a
    /// page holds little memory.
    pub fn stream(self, slot: tokio::sync::OwnedSemaphorePermit) -> HttpResponse {
        const CHUNK: usize = PIECE_BYTES;
        if self.items.len() <= WHOLE_PAGE_ROWS {
            drop(slot);
            return match serde_json::to_vec(&self) {
                Ok(body) => HttpResponse::Ok()
                    .content_type(actix_web::http::header::ContentType::json())
                    .body(body),
                Err(err) => actix_web::ResponseError::error_response(&AppError::internal(err)),
            };
        }
        let Page { items, next_cursor } = self;
        let tail = format!(
            "],\"next_cursor\":{}}}",
            serde_json::to_string(&next_cursor).unwrap_or_else(|_| "null".into())
        );
        let state = (items.into_iter(), Some(tail), true, slot);
        let chunks =
            futures_util::stream::unfold(state, |(mut rows, tail, first, slot)| async move {
                let tail = tail?;
                let mut chunk = Vec::with_capacity(CHUNK + 2048);
                if first {
                    chunk.extend_from_slice(b"{\"items\":[");
                }
                let mut wrote_any = !first;
                while chunk.len() < CHUNK {
                    let Some(row) = rows.next() else {
                        chunk.extend_from_slice(tail.as_bytes());
                        return Some((
                            Ok::<_, std::convert::Infallible>(Bytes::from(chunk)),
                            (rows, None, false, slot),
                        ));
                    };
                    if wrote_any {
                        chunk.push(b',');
                    }
                    if let Err(err) = serde_json::to_writer(&mut chunk, &row) {
                        log::error!("serialising a list row failed: {err}");
                        return None;
                    }
                    wrote_any = true;
                }
                Some((Ok(Bytes::from(chunk)), (rows, Some(tail), false, slot)))
            });
        HttpResponse::Ok()
            .content_type(actix_web::http::header::ContentType::json())
            .streaming(chunks)
    }
}

/// `updated_since` and `sort` of the lists polling clients read (SPEC §12: coordination tickets
/// and knowledge; incidents have their own `sort`).
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Only rows changed at or after this time (RFC 3339). Sort by `updated_at` to walk the
    /// changes in order, and poll again from the last `updated_at` seen, a few seconds back: a
    /// change that commits late may carry a slightly earlier time.
    pub updated_since: Option<chrono::DateTime<chrono::Utc>>,
    /// `updated_at`: least recently changed first. Without it, oldest first. A `cursor`
    /// continues only the order it was made in.
    #[param(inline)]
    pub sort: Option<ChangesSort>,
}

/// The order of a list polling clients read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub enum ChangesSort {
    /// Least recently changed first.
    #[serde(rename = "updated_at")]
    UpdatedAt,
}

impl ChangesQuery {
    /// The page `paging` asks for, in this order.
    pub fn page(&self, paging: &PageQuery) -> Result<ChangesPage, AppError> {
        let limit = paging.limit()?;
        let first = match self.sort {
            None => ListPosition::Id(None),
            Some(ChangesSort::UpdatedAt) => ListPosition::Changed(None),
        };
        let after = match paging.cursor.as_deref() {
            None => first,
            Some(cursor) => {
                let after: ListPosition = decode_cursor(cursor)?;
                if std::mem::discriminant(&after) != std::mem::discriminant(&first) {
                    return Err(AppError::invalid_field(
                        "cursor",
                        "invalid",
                        "the cursor belongs to another sort order",
                    ));
                }
                after
            }
        };
        Ok(ChangesPage {
            limit,
            updated_since: self.updated_since,
            after,
        })
    }
}

/// Wraps rows and where the next page starts into a page.
pub fn changes_page<R, T>(
    rows: (Vec<R>, Option<ListPosition>),
    map: impl FnMut(R) -> T,
) -> Page<T> {
    let (rows, next) = rows;
    Page {
        items: rows.into_iter().map(map).collect(),
        next_cursor: next.map(|position| encode_cursor(&position)),
    }
}

#[derive(Serialize, Deserialize)]
struct IdCursor {
    after: i64,
}

/// Encodes a list position as an opaque cursor.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is a 422 on `cursor`.
pub fn decode_cursor<T: serde::de::DeserializeOwned>(cursor: &str) -> Result<T, AppError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            AppError::invalid_field("cursor", "invalid", "is not a cursor returned by this list")
        })
}

/// Builds the page request from `limit` and `cursor`.
pub fn page_request(limit: Option<i64>, cursor: Option<&str>) -> Result<PageRequest, AppError> {
    let limit = PageQuery {
        limit,
        cursor: None,
    }
    .limit()?;
    let after = cursor
        .map(|cursor| decode_cursor::<IdCursor>(cursor).map(|c| c.after))
        .transpose()?;
    Ok(PageRequest { limit, after })
}

/// Wraps rows and the last id (when more follow) into a page.
pub fn page<R, T>(rows: (Vec<R>, Option<i64>), map: impl FnMut(R) -> T) -> Page<T> {
    let (rows, next) = rows;
    Page {
        items: rows.into_iter().map(map).collect(),
        next_cursor: next.map(|after| encode_cursor(&IdCursor { after })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let page = page((vec![1, 2], Some(2)), |x: i64| x);
        let cursor = page.next_cursor.unwrap();
        let request = page_request(Some(2), Some(&cursor)).unwrap();
        assert_eq!(request.after, Some(2));
        assert_eq!(request.limit, 2);
    }

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(page_request(None, None).unwrap().limit, DEFAULT_LIMIT);
        assert!(page_request(Some(0), None).is_err());
        assert!(page_request(Some(201), None).is_err());
        assert!(page_request(None, Some("garbage!")).is_err());
        assert!(page_request(None, Some("eyJ4IjoxfQ")).is_err());
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        assert!(page((vec![1], None), |x: i32| x).next_cursor.is_none());
    }
}
