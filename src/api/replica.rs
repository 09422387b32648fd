//! Read-after-write with a read replica (SPEC §14): each successful write of an authenticated
//! caller is recorded on the primary before its answer leaves, so that the caller's reads stay
//! on the primary for `READ_AFTER_WRITE_WINDOW` on whichever instance they land.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpMessage};

use crate::api::extract::AuthUser;
use crate::state::AppState;
use crate::store::{self, StoreError};

/// The caller of a write, left in the request by the [`AuthUser`] extractor.
#[derive(Debug, Clone, Copy)]
pub struct Writer(pub i64);

/// Whether a request of `method` may write.
pub fn writes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Records the caller of every successful write when a replica is configured; does nothing
/// otherwise.
pub async fn record_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let state = req
        .app_data::<Data<AppState>>()
        .filter(|state| state.replica.is_some() && writes(req.method()))
        .cloned();
    let response = next.call(req).await?;
    let Some(state) = state else {
        return Ok(response);
    };
    if !response.status().is_success() {
        return Ok(response);
    }
    let writer = {
        let extensions = response.request().extensions();
        extensions
            .get::<Writer>()
            .map(|writer| writer.0)
            .or_else(|| extensions.get::<AuthUser>().map(|caller| caller.id))
    };
    let noted = match (writer, &state.replica) {
        (Some(user), Some(replica)) if replica.note_write(user) => Some(user),
        _ => None,
    };
    if let Some(user) = noted {
        // The write itself succeeded; failing its answer now would invite a retry of it.
        let recorded: Result<(), StoreError> = store::run(&state.pool, move |conn| {
            store::replica::record_write(conn, user)
        })
        .await;
        if let Err(err) = recorded {
            log::warn!("recording a write for read-after-write failed: {err}");
        }
    }
    Ok(response)
}
