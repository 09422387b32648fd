//! `/api/v1/configuration-items`: configuration items (配置项) with their change history.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get, patch, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::{Validate, ValidationError};

use super::extract::{AuthUser, IfMatch, JsonBody, ValidQuery};
use super::pagination::{Page, PageQuery, page};
use crate::api::problems;
use crate::api::respond::{created, versioned};
use crate::domain::changes::FieldChange;
use crate::domain::validation::check_text;
use crate::domain::validation::rule;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::configuration_items::{
    ConfigurationItemFilter, ConfigurationItemPatch, ConfigurationItemRow, HistoryRow,
    NewConfigurationItem,
};

/// A configuration item.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "门诊收费服务器 01", "ci_type": "server", "customer_id": 1, "system": "HIS", "created_at": "2026-12-07T09:15:00Z", "updated_at": "2026-12-07T09:15:00Z", "version": 1}))]
pub struct ConfigurationItemResponse {
    /// Id.
    #[schema(example = 10)]
    pub id: i64,
    /// Name, unique within its customer; monitoring events name the CI by it.
    #[schema(example = "his-db-01")]
    pub name: String,
    /// Kind of item.
    #[schema(example = "database_server")]
    pub ci_type: String,
    /// Owning customer organisation.
    #[schema(example = 1)]
    pub customer_id: i64,
    /// IT / application system the item belongs to.
    #[schema(example = "HIS")]
    pub system: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version for `If-Match`.
    pub version: i32,
}

impl From<ConfigurationItemRow> for ConfigurationItemResponse {
    fn from(row: ConfigurationItemRow) -> Self {
        ConfigurationItemResponse {
            id: row.id,
            name: row.name,
            ci_type: row.ci_type,
            customer_id: row.customer_id,
            system: row.system,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

/// One change of a configuration item.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigurationItemHistoryEntry {
    /// Id.
    pub id: i64,
    /// Who made the change.
    pub actor_id: Option<i64>,
    /// `created` or `updated`.
    #[schema(example = "updated")]
    pub action: String,
    /// Fields that changed, old → new.
    pub changes: Vec<FieldChange>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<HistoryRow> for ConfigurationItemHistoryEntry {
    fn from(row: HistoryRow) -> Self {
        ConfigurationItemHistoryEntry {
            changes: row.field_changes(),
            id: row.id,
            actor_id: row.actor_id,
            action: row.action,
            created_at: row.created_at,
        }
    }
}

fn name_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("name", value, 200))
}

fn ci_type_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("ci_type", value, 64))
}

fn system_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("system", value, 200))
}

/// A new configuration item.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "门诊收费服务器 01", "ci_type": "server", "customer_id": 1, "system": "HIS"}))]
pub struct CreateConfigurationItemRequest {
    /// 1–200 characters, unique within the customer.
    #[validate(custom(function = "name_rule"))]
    #[schema(
        example = "his-db-01",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub name: String,
    /// 1–64 characters.
    #[validate(custom(function = "ci_type_rule"))]
    #[schema(
        example = "database_server",
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub ci_type: String,
    /// Owning customer organisation.
    #[schema(example = 1)]
    pub customer_id: i64,
    /// 1–200 characters.
    #[validate(custom(function = "system_rule"))]
    #[schema(
        example = "HIS",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub system: String,
}

/// Changes to a configuration item; absent fields stay as they are.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "门诊收费服务器 01（已扩容）"}))]
pub struct UpdateConfigurationItemRequest {
    /// New name.
    #[validate(custom(function = "name_rule"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub name: Option<String>,
    /// New kind.
    #[validate(custom(function = "ci_type_rule"))]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub ci_type: Option<String>,
    /// New owning customer.
    pub customer_id: Option<i64>,
    /// New system.
    #[validate(custom(function = "system_rule"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub system: Option<String>,
}

/// Filters of `GET /configuration-items`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListConfigurationItemsQuery {
    /// Items of this customer.
    pub customer_id: Option<i64>,
    /// Items of this kind.
    #[validate(length(max = 64))]
    #[param(max_length = 64, pattern = "^[^\\u0000]*$")]
    pub ci_type: Option<String>,
    /// Items of this system.
    #[validate(length(max = 200))]
    #[param(max_length = 200, pattern = "^[^\\u0000]*$")]
    pub system: Option<String>,
    /// Text in the name (empty means no filter).
    #[validate(length(max = 200))]
    #[param(max_length = 200, pattern = "^[^\\u0000]*$")]
    pub q: Option<String>,
}

/// Create a configuration item
///
/// A server, database, application or device of a customer, which incidents name in `ci_id`. The
/// example creates item 1 of customer 1.
///
/// Roles: `admin` and staff.
///
/// Errors: 409 `already_exists` when the customer already has an item of that name; 422
/// `validation_failed` for a bad field or an unknown customer.
#[utoipa::path(
    tag = "configuration-items",
    security(("bearer" = [])),
    request_body = CreateConfigurationItemRequest,
    responses(
        (status = 201, description = "Configuration item created", body = ConfigurationItemResponse,
            headers(("ETag" = String, description = "Version"), ("Location" = String, description = "URL of the item"))),
        problems::CreateErrors, problems::Conflict
    )
)]
#[post("/configuration-items")]
pub async fn create_configuration_item(
    state: Data<AppState>,
    caller: AuthUser,
    body: JsonBody<CreateConfigurationItemRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin_or_staff()?;
    let request = body.parse()?;
    let new = NewConfigurationItem {
        name: request.name.trim().to_owned(),
        ci_type: request.ci_type.trim().to_owned(),
        customer_id: request.customer_id,
        system: request.system.trim().to_owned(),
    };
    let now = state.clock.now();
    let row = store::run(&state.pool, move |conn| {
        store::configuration_items::insert(conn, new, caller.id, now)
    })
    .await?;
    Ok(created(
        Some(format!("/api/v1/configuration-items/{}", row.id)),
        row.version,
        ConfigurationItemResponse::from(row),
    ))
}

/// List configuration items
///
/// Filter by customer, system or type. Staff and admins see every item; a customer user sees its
/// own organisation's.
///
/// Roles: any signed-in user.
#[utoipa::path(
    tag = "configuration-items",
    security(("bearer" = [])),
    params(ListConfigurationItemsQuery, PageQuery),
    responses(
        (status = 200, description = "A page of configuration items, in id order", body = Page<ConfigurationItemResponse>),
        problems::ListErrors
    )
)]
#[get("/configuration-items")]
pub async fn list_configuration_items(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<ListConfigurationItemsQuery>,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.0;
    caller.customer_scope()?;
    let Some(customer_id) = caller.customer_filter(query.customer_id) else {
        return Ok(HttpResponse::Ok().json(Page::<ConfigurationItemResponse>::empty()));
    };
    let page_req = paging.0.request()?;
    let filter = ConfigurationItemFilter {
        customer_id,
        ci_type: query.ci_type,
        system: query.system,
        q: query.q.filter(|q| !q.trim().is_empty()),
    };
    let rows = store::run(&state.pool, move |conn| {
        store::configuration_items::list(conn, &filter, page_req)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page(rows, ConfigurationItemResponse::from)))
}

async fn load_visible(
    state: &AppState,
    caller: &AuthUser,
    id: i64,
) -> Result<ConfigurationItemRow, AppError> {
    let own = caller.customer_scope()?;
    let row = store::run(&state.pool, move |conn| {
        store::configuration_items::find(conn, id)
    })
    .await?;
    if own.is_some_and(|own| own != row.customer_id) {
        return Err(AppError::not_found("configuration item", id));
    }
    Ok(row)
}

/// One configuration item
///
/// Roles: any signed-in user; a customer user may read its own organisation's items only.
///
/// Errors: 404 `not_found` otherwise.
#[utoipa::path(
    tag = "configuration-items",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Configuration item id")),
    responses(
        (status = 200, description = "The configuration item", body = ConfigurationItemResponse,
            headers(("ETag" = String, description = "Version"))),
        problems::ReadErrors
    )
)]
#[get("/configuration-items/{id}")]
pub async fn get_configuration_item(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    let row = load_visible(&state, &caller, id.into_inner()).await?;
    Ok(versioned(row.version, ConfigurationItemResponse::from(row)))
}

/// Change a configuration item
///
/// Only the fields sent change; every change is kept in the item's history with who made it.
///
/// Roles: `admin` and staff.
///
/// Errors: 412 `version_mismatch` for a stale `If-Match`; 422 `validation_failed` for a bad field.
#[utoipa::path(
    tag = "configuration-items",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Configuration item id"),
        IfMatch
    ),
    request_body = UpdateConfigurationItemRequest,
    responses(
        (status = 200, description = "The changed item", body = ConfigurationItemResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::UpdateErrors, problems::Conflict
    )
)]
#[patch("/configuration-items/{id}")]
pub async fn update_configuration_item(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<UpdateConfigurationItemRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin_or_staff()?;
    let request = body.parse()?;
    let id = id.into_inner();
    let patch = ConfigurationItemPatch {
        name: request.name.map(|v| v.trim().to_owned()),
        ci_type: request.ci_type.map(|v| v.trim().to_owned()),
        customer_id: request.customer_id,
        system: request.system.map(|v| v.trim().to_owned()),
    };
    let now = state.clock.now();
    let row = store::run(&state.pool, move |conn| {
        store::configuration_items::update(conn, id, patch, if_match.0, caller.id, now)
    })
    .await?;
    Ok(versioned(row.version, ConfigurationItemResponse::from(row)))
}

/// A configuration item's change history, oldest first
///
/// Each entry holds the fields before and after, who changed them and when.
///
/// Roles: `admin` and staff.
#[utoipa::path(
    tag = "configuration-items",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Configuration item id")),
    responses(
        (status = 200, description = "History entries, oldest first", body = Vec<ConfigurationItemHistoryEntry>),
        problems::ReadErrors
    )
)]
#[get("/configuration-items/{id}/history")]
pub async fn get_configuration_item_history(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin_or_staff()?;
    let id = id.into_inner();
    let rows = store::run(&state.pool, move |conn| {
        store::configuration_items::find(conn, id)?;
        store::configuration_items::history(conn, id)
    })
    .await?;
    let entries: Vec<ConfigurationItemHistoryEntry> = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(entries))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_configuration_item)
        .service(list_configuration_items)
        .service(get_configuration_item)
        .service(update_configuration_item)
        .service(get_configuration_item_history);
}
