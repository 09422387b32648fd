//! `/api/v1/customers`: customer organisations (单位).

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
use crate::domain::customer::check_code;
use crate::domain::notification::Locale;
use crate::domain::validation::check_text;
use crate::domain::validation::rule;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::customers::{CustomerFilter, CustomerPatch, CustomerRow};

/// A customer organisation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 1, "code": "BJ-HOSP-01", "name": "北京示例医院", "active": true, "locale": "zh", "created_at": "2026-12-07T09:15:00Z", "updated_at": "2026-12-07T09:15:00Z", "version": 1}))]
pub struct CustomerResponse {
    /// Id.
    #[schema(example = 1)]
    pub id: i64,
    /// Short unique code; monitoring events name the customer by it.
    #[schema(example = "QD-HOSP-1")]
    pub code: String,
    /// Name.
    #[schema(example = "青岛市第一人民医院")]
    pub name: String,
    /// False once the organisation is no longer served.
    pub active: bool,
    /// Language of the e-mail its reporters get: `zh` (default) or `en`.
    pub locale: Locale,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version for `If-Match`.
    pub version: i32,
}

impl From<CustomerRow> for CustomerResponse {
    fn from(row: CustomerRow) -> Self {
        CustomerResponse {
            id: row.id,
            code: row.code,
            name: row.name,
            active: row.active,
            // The database admits only known codes.
            locale: row.locale.parse().unwrap_or_default(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

fn code_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_code(value))
}

fn name_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("name", value, 200))
}

/// A new customer organisation.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "BJ-HOSP-01", "name": "北京示例医院"}))]
pub struct CreateCustomerRequest {
    /// 1–64 letters, digits, `_ . -`; unique.
    #[validate(custom(function = "code_rule"))]
    #[schema(example = "QD-HOSP-1", pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    pub code: String,
    /// 1–200 characters.
    #[validate(custom(function = "name_rule"))]
    #[schema(
        example = "青岛市第一人民医院",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub name: String,
    /// Language of the e-mail its reporters get: `zh` (default) or `en`.
    pub locale: Option<Locale>,
}

/// Changes to a customer; absent fields stay as they are.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "北京示例医院（总院）"}))]
pub struct UpdateCustomerRequest {
    /// New code.
    #[validate(custom(function = "code_rule"))]
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    pub code: Option<String>,
    /// New name.
    #[validate(custom(function = "name_rule"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub name: Option<String>,
    /// `false` marks the organisation as no longer served.
    pub active: Option<bool>,
    /// Language of the e-mail its reporters get.
    pub locale: Option<Locale>,
}

/// Filters of `GET /customers`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCustomersQuery {
    /// Active or inactive organisations only.
    pub active: Option<bool>,
    /// Text in code or name (empty means no filter).
    #[validate(length(max = 200))]
    #[param(max_length = 200, pattern = "^[^\\u0000]*$")]
    pub q: Option<String>,
}

/// Create a customer organisation
///
/// `code` is the short, unique name monitoring systems use in `custom_details.customer`. The
/// example creates customer 1, which the other examples refer to.
///
/// Roles: `admin`.
///
/// Errors: 409 `already_exists` when the code is taken; 422 `validation_failed` for a bad field.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    request_body = CreateCustomerRequest,
    responses(
        (status = 201, description = "Customer created", body = CustomerResponse,
            headers(("ETag" = String, description = "Version"), ("Location" = String, description = "URL of the customer"))),
        problems::CreateErrors, problems::Conflict
    )
)]
#[post("/customers")]
pub async fn create_customer(
    state: Data<AppState>,
    caller: AuthUser,
    body: JsonBody<CreateCustomerRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let request = body.parse()?;
    let row = store::run(&state.pool, move |conn| {
        store::customers::insert(
            conn,
            &request.code,
            request.name.trim(),
            request.locale.unwrap_or_default(),
        )
    })
    .await?;
    Ok(created(
        Some(format!("/api/v1/customers/{}", row.id)),
        row.version,
        CustomerResponse::from(row),
    ))
}

/// List customer organisations
///
/// Staff and admins see every organisation; a customer user sees its own only.
///
/// Roles: any signed-in user.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    params(ListCustomersQuery, PageQuery),
    responses(
        (status = 200, description = "A page of customers, in id order", body = Page<CustomerResponse>),
        problems::ListErrors
    )
)]
#[get("/customers")]
pub async fn list_customers(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<ListCustomersQuery>,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let only_id = caller.customer_scope()?;
    let query = query.0;
    let page_req = paging.0.request()?;
    let filter = CustomerFilter {
        only_id,
        active: query.active,
        q: query.q.filter(|q| !q.trim().is_empty()),
    };
    let rows = store::run(&state.pool, move |conn| {
        store::customers::list(conn, &filter, page_req)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page(rows, CustomerResponse::from)))
}

/// One customer organisation
///
/// Roles: any signed-in user; a customer user may read its own organisation only.
///
/// Errors: 404 `not_found` for no such organisation, or another organisation for a customer user.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id")),
    responses(
        (status = 200, description = "The customer", body = CustomerResponse,
            headers(("ETag" = String, description = "Version"))),
        problems::ReadErrors
    )
)]
#[get("/customers/{id}")]
pub async fn get_customer(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    // A customer user learns nothing about other organisations, not even that they exist.
    if caller.customer_scope()?.is_some_and(|own| own != id) {
        return Err(AppError::not_found("customer", id));
    }
    let row = store::run(&state.pool, move |conn| store::customers::find(conn, id)).await?;
    Ok(versioned(row.version, CustomerResponse::from(row)))
}

/// Change a customer organisation
///
/// Only the fields sent change; `active: false` marks an organisation no longer served, keeping its
/// history.
///
/// Roles: `admin`.
///
/// Errors: 409 `already_exists` when the new code is taken; 412 `version_mismatch` for a stale
/// `If-Match`.
#[utoipa::path(
    tag = "customers",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Customer id"),
        IfMatch
    ),
    request_body = UpdateCustomerRequest,
    responses(
        (status = 200, description = "The changed customer", body = CustomerResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::UpdateErrors, problems::Conflict
    )
)]
#[patch("/customers/{id}")]
pub async fn update_customer(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<UpdateCustomerRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_admin()?;
    let request = body.parse()?;
    let id = id.into_inner();
    let patch = CustomerPatch {
        code: request.code,
        name: request.name.map(|name| name.trim().to_owned()),
        active: request.active,
        locale: request.locale,
    };
    let now = state.clock.now();
    let row = store::run(&state.pool, move |conn| {
        store::customers::update(conn, id, patch, if_match.0, now)
    })
    .await?;
    Ok(versioned(row.version, CustomerResponse::from(row)))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_customer)
        .service(list_customers)
        .service(get_customer)
        .service(update_customer);
}
