//! `GET /api/v1/taxonomy`.

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::AuthUser;
use crate::api::problems;
use crate::domain::taxonomy::Taxonomy;
use crate::error::AppError;
use crate::state::AppState;

/// The incident taxonomy: categories, subcategories, causes, sub-causes
///
/// Each with its Chinese and English name; subcategories carry their default level. `POST
/// /incidents` takes `category`/`subcategory`, `resolve` takes `cause`/`subcause` from here.
///
/// Roles: any signed-in user.
#[utoipa::path(
    tag = "reference-data",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The taxonomy", body = Taxonomy),
        problems::SignedInErrors
    )
)]
#[get("/taxonomy")]
pub async fn get_taxonomy(
    state: Data<AppState>,
    _caller: AuthUser,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "private, max-age=300"))
        .json(state.taxonomy.as_ref()))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_taxonomy);
}
