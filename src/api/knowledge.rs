//! `/api/v1/knowledge`: the knowledge base (SPEC §7): write, review with four eyes, retire, and
//! search in Chinese and English.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get, patch, post};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::{AuthUser, IfMatch, JsonBody, ValidQuery};
use super::pagination::{ChangesQuery, Page, PageQuery, changes_page};
use crate::api::idempotency::{IdempotencyKey, json_answer, run_keyed};
use crate::api::problems;
use crate::api::respond::versioned;
use crate::domain::knowledge::{
    self, KnowledgeCommand, KnowledgeEntry, KnowledgePatch, KnowledgeStatus, KnowledgeText,
};
use crate::domain::role::Role;
use crate::domain::search::SearchQuery;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::knowledge::KnowledgeFilter;

/// A new entry, written as a draft.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "收费模块保存处方失败", "symptom": "录入处方时提示“保存失败”，只在个别窗口出现。", "cause": "客户端版本过旧，保存接口字段长度校验不一致。", "solution": "为该窗口重新部署最新客户端。", "category": "usage_issue", "subcategory": "module_input_blocked", "tags": ["收费", "处方", "客户端"], "source_incident_id": 1}))]
pub struct CreateKnowledgeRequest {
    /// 1–200 characters.
    #[schema(example = "升级出错：数据库脚本执行失败（ORA-00942）")]
    pub title: String,
    /// What the user sees, 1–10 000 characters.
    #[schema(example = "升级 HIS 后收费模块报错 ORA-00942: 表或视图不存在")]
    pub symptom: String,
    /// Why it happens.
    #[schema(example = "升级包中的数据库脚本未执行")]
    pub cause: Option<String>,
    /// What solves it, 1–10 000 characters.
    #[schema(example = "重新执行升级包中的数据库脚本 upgrade_fee.sql，再重启收费服务")]
    pub solution: String,
    /// Category code (follows from the subcategory when left out).
    pub category: Option<String>,
    /// Subcategory code.
    #[schema(example = "upgrade_error")]
    pub subcategory: Option<String>,
    /// Up to 20 tags of 1–50 characters.
    #[serde(default)]
    #[schema(example = json!(["HIS", "Oracle"]))]
    pub tags: Vec<String>,
    /// The incident it was learned from.
    pub source_incident_id: Option<i64>,
}

/// Changes to a draft (its author); `null` clears `cause`, `category` or `subcategory`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tags": ["收费", "处方", "客户端", "保存失败"]}))]
pub struct UpdateKnowledgeRequest {
    /// New title.
    #[schema(example = "升级出错：收费模块数据库脚本执行失败")]
    pub title: Option<String>,
    /// New symptom.
    #[schema(example = "升级 HIS 5.2 后收费模块报错 ORA-00942")]
    pub symptom: Option<String>,
    /// New cause (`null` clears).
    #[serde(default, deserialize_with = "crate::api::extract::clearable")]
    #[schema(value_type = Option<String>)]
    pub cause: Option<Option<String>>,
    /// New solution.
    #[schema(example = "重新执行 upgrade_fee.sql，再重启收费服务")]
    pub solution: Option<String>,
    /// New category (`null` clears).
    #[serde(default, deserialize_with = "crate::api::extract::clearable")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    /// New subcategory (`null` clears).
    #[serde(default, deserialize_with = "crate::api::extract::clearable")]
    #[schema(value_type = Option<String>)]
    pub subcategory: Option<Option<String>>,
    /// New tags.
    pub tags: Option<Vec<String>>,
}

/// Why an entry goes back to its author.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "请补充客户端版本号和部署步骤。"}))]
pub struct RejectKnowledgeRequest {
    /// 1–10 000 characters.
    #[schema(example = "请补充原因分析")]
    pub reason: String,
}

/// A step that needs no fields.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({}))]
pub struct EmptyRequest {}

/// What to search for.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchKnowledgeQuery {
    /// Words in Chinese or English; an entry matches when it contains every term (`升级出错`,
    /// `upgrade error`, `ORA-00942`, `数据库脚本`). Results are then ranked by relevance; when
    /// more than 1 000 entries match, the newest 1 000 are ranked.
    #[validate(length(max = 200))]
    #[param(example = "升级出错", max_length = 200)]
    pub q: Option<String>,
    /// In this state (staff; customers see `published` only).
    #[param(inline)]
    pub status: Option<KnowledgeStatus>,
    /// Category code.
    pub category: Option<String>,
    /// Subcategory code.
    pub subcategory: Option<String>,
    /// Carrying this tag.
    pub tag: Option<String>,
}

/// An entry found by a search, with its relevance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KnowledgeHit {
    /// The entry.
    #[serde(flatten)]
    pub entry: KnowledgeEntry,
    /// PostgreSQL's `ts_rank` against the query (0 without `q`).
    #[schema(example = 0.6)]
    pub score: f64,
}

fn location(entry: &KnowledgeEntry) -> String {
    format!("/api/v1/knowledge/{}", entry.id)
}

/// Write a knowledge entry: a draft of its author
///
/// A symptom, its cause and the solution, classified like incidents and tagged, optionally citing
/// the incident it came from. It is published after review by the expert group (`submit`, then
/// `approve` by someone else). The example writes an entry from incident 1.
///
/// Roles: `service_desk`, `l2_engineer`, `incident_manager`.
///
/// Errors: 422 `validation_failed` for a bad field or an unknown classification or source incident.
#[utoipa::path(
    tag = "knowledge",
    security(("bearer" = [])),
    params(IdempotencyKey),
    request_body = CreateKnowledgeRequest,
    responses(
        (status = 201, description = "A draft", body = KnowledgeEntry,
            headers(("ETag" = String, description = "Version"), ("Location" = String, description = "The entry"))),
        problems::CreateErrors
    )
)]
#[post("/knowledge")]
pub async fn create_knowledge(
    http: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    body: JsonBody<CreateKnowledgeRequest>,
) -> Result<HttpResponse, AppError> {
    let request = body.parse()?;
    let text = KnowledgeText {
        title: request.title,
        symptom: request.symptom,
        cause: request.cause,
        solution: request.solution,
        category: request.category,
        subcategory: request.subcategory,
        tags: request.tags,
    };
    let source = request.source_incident_id;
    let now = state.clock.now();
    let taxonomy = state.taxonomy.clone();
    run_keyed(&http, &state, move |conn| {
        let entry =
            store::knowledge::create(conn, caller.id, &caller.roles, text, source, &taxonomy, now)?;
        json_answer(
            StatusCode::CREATED,
            Some(entry.version),
            Some(location(&entry)),
            &entry,
        )
    })
    .await
}

async fn act(
    state: &AppState,
    caller: AuthUser,
    id: i64,
    if_match: IfMatch,
    command: KnowledgeCommand,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let now = state.clock.now();
    let taxonomy = state.taxonomy.clone();
    let entry = store::run(&state.pool, move |conn| {
        store::knowledge::execute(
            conn,
            id,
            if_match.0,
            (caller.id, &caller.roles),
            command,
            &taxonomy,
            now,
        )
    })
    .await?;
    Ok(versioned(entry.version, entry))
}

/// Edit a draft knowledge entry
///
/// Only the fields sent change. The example works on a draft of the caller.
///
/// Roles: the entry's author.
///
/// Errors: 409 `illegal_transition` unless `draft`; 412 `version_mismatch` for a stale `If-Match`.
#[utoipa::path(
    tag = "knowledge",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Entry id"), IfMatch),
    request_body = UpdateKnowledgeRequest,
    responses(
        (status = 200, description = "Edited", body = KnowledgeEntry),
        problems::StepErrors
    )
)]
#[patch("/knowledge/{id}")]
pub async fn update_knowledge(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<UpdateKnowledgeRequest>,
) -> Result<HttpResponse, AppError> {
    let r = body.parse()?;
    let patch = KnowledgePatch {
        title: r.title,
        symptom: r.symptom,
        cause: r.cause,
        solution: r.solution,
        category: r.category,
        subcategory: r.subcategory,
        tags: r.tags,
    };
    act(
        &state,
        caller,
        id.into_inner(),
        if_match,
        KnowledgeCommand::Edit(patch),
    )
    .await
}

// rustfmt re-indents the attribute inside this macro further on every run.
#[rustfmt::skip]
macro_rules! knowledge_step {
    ($name:ident, $path:literal, $summary:literal, $description:literal, $body:ty, $parse:ident, $command:expr) => {
        #[doc = $summary]
        #[doc = ""]
        #[doc = $description]
        #[utoipa::path(
            tag = "knowledge",
            security(("bearer" = [])),
            params(("id" = i64, Path, description = "Entry id"), IfMatch),
            request_body = $body,
            responses(
                (status = 200, description = "Done", body = KnowledgeEntry),
                problems::StepErrors
            )
        )]
        #[post($path)]
        pub async fn $name(
            state: Data<AppState>,
            caller: AuthUser,
            id: Path<i64>,
            if_match: IfMatch,
            body: JsonBody<$body>,
        ) -> Result<HttpResponse, AppError> {
            let command: KnowledgeCommand = ($command)(body.$parse()?);
            act(&state, caller, id.into_inner(), if_match, command).await
        }
    };
}

knowledge_step!(
    submit_knowledge,
    "/knowledge/{id}/submit",
    "Submit a draft knowledge entry for review: draft → submitted",
    "The expert group (L2 engineers and incident managers) reviews it. The example submits a draft of the caller.\n\nRoles: the entry's author.\n\nErrors: 409 `illegal_transition` unless `draft`.",
    EmptyRequest,
    parse_or_default,
    |_| KnowledgeCommand::Submit
);
knowledge_step!(
    approve_knowledge,
    "/knowledge/{id}/approve",
    "Publish a submitted knowledge entry: submitted → published",
    "Four eyes: never by its author. Emits `knowledge.published`; customers can read it from then on.\n\nRoles: `l2_engineer`, `incident_manager`, not the author (403).\n\nErrors: 409 `illegal_transition` unless `submitted`.",
    EmptyRequest,
    parse_or_default,
    |_| KnowledgeCommand::Approve
);
knowledge_step!(
    reject_knowledge,
    "/knowledge/{id}/reject",
    "Send a submitted knowledge entry back to its author: submitted → draft",
    "With the reason, so the author can improve it. The example works on any submitted entry.\n\nRoles: `l2_engineer`, `incident_manager`.\n\nErrors: 409 `illegal_transition` unless `submitted`.",
    RejectKnowledgeRequest,
    parse,
    |body: RejectKnowledgeRequest| KnowledgeCommand::Reject {
        reason: body.reason
    }
);
knowledge_step!(
    retire_knowledge,
    "/knowledge/{id}/retire",
    "Retire a published knowledge entry: published → retired",
    "Customers and incident suggestions no longer show it.\n\nRoles: `l2_engineer`, `incident_manager`.\n\nErrors: 409 `illegal_transition` unless `published`.",
    EmptyRequest,
    parse_or_default,
    |_| KnowledgeCommand::Retire
);

/// One knowledge entry
///
/// Staff see every status; customer users see published entries only, without author, reviewer,
/// review notes and source incident.
///
/// Roles: staff, `customer`.
///
/// Errors: 404 `not_found` for no such entry, or an unpublished one for a customer.
#[utoipa::path(
    tag = "knowledge",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Entry id")),
    responses(
        (status = 200, description = "The entry", body = KnowledgeEntry,
            headers(("ETag" = String, description = "Version"))),
        problems::ReadErrors
    )
)]
#[get("/knowledge/{id}")]
pub async fn get_knowledge(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&knowledge::READERS)?;
    let published_only = !caller.roles.is_staff();
    let id = id.into_inner();
    let entry = store::run(&state.pool, move |conn| {
        store::knowledge::find(conn, id, published_only)
    })
    .await?;
    let mut body = serde_json::to_value(&entry).map_err(AppError::internal)?;
    if !caller.roles.is_staff() {
        knowledge::withhold_from_customers(&mut body);
    }
    Ok(versioned(entry.version, body))
}

/// Search the knowledge base in Chinese and English
///
/// With `q`, entries containing every term (Chinese segmented into words, English stemmed), most
/// relevant first; without, all entries by id. `sort=updated_at` with `updated_since` polls for
/// changes. Customers see published entries without author, reviewer, review notes and source
/// incident.
///
/// Roles: staff, `customer` (published entries only).
#[utoipa::path(
    tag = "knowledge",
    security(("bearer" = [])),
    params(SearchKnowledgeQuery, ChangesQuery, PageQuery),
    responses(
        (status = 200, description = "A page of entries", body = Page<KnowledgeHit>),
        problems::ListErrors
    )
)]
#[get("/knowledge")]
pub async fn search_knowledge(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<SearchKnowledgeQuery>,
    changes: ValidQuery<ChangesQuery>,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&knowledge::READERS)?;
    let page_req = changes.0.page(&paging.0)?;
    let query = query.0;
    let statuses = match (caller.roles.is_staff(), query.status) {
        (true, Some(status)) => vec![status],
        (true, None) => KnowledgeStatus::ALL.to_vec(),
        (false, Some(status)) if status != KnowledgeStatus::Published => vec![],
        (false, _) => vec![KnowledgeStatus::Published],
    };
    let filter = KnowledgeFilter {
        query: query.q.as_deref().and_then(SearchQuery::parse),
        statuses,
        category: query.category,
        subcategory: query.subcategory,
        tag: query.tag,
    };
    let filter_searches = filter.query.is_some();
    let slot = state.heavy_read_slot().await?;
    let search =
        move |conn: &mut store::Connection| store::knowledge::search(conn, &filter, page_req);
    // A text search may be answered by the read replica (SPEC §14); the plain list, which
    // reviewers poll with `updated_since`, is always current.
    let found = if filter_searches {
        state.run_read(caller.id, search).await?
    } else {
        store::run(&state.pool, search).await?
    };
    let page = changes_page(found, |(entry, score)| KnowledgeHit { entry, score });
    if caller.roles.is_staff() {
        return Ok(page.stream(slot));
    }
    let mut body = serde_json::to_value(&page).map_err(AppError::internal)?;
    for hit in body["items"].as_array_mut().into_iter().flatten() {
        knowledge::withhold_from_customers(hit);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// A published entry suggested for an incident.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SuggestedEntry {
    /// The entry.
    pub entry: KnowledgeEntry,
    /// Similarity (`ts_rank`, plus 0.2 for the same subcategory or 0.1 for the same category).
    pub score: f64,
}

/// An incident closed as `resolved` that resembles the one asked about.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SimilarIncidentResponse {
    /// Id.
    pub id: i64,
    /// Number.
    #[schema(example = "INC-000812")]
    pub number: String,
    /// Title.
    #[schema(example = "HIS 升级后收费模块报错 ORA-00942")]
    pub title: String,
    /// Its organisation (any customer's incident may help).
    pub customer_id: Option<i64>,
    /// How it was solved.
    #[schema(example = "重新执行升级包中的数据库脚本，重启收费服务后恢复")]
    pub solution: Option<String>,
    /// Cause code.
    pub cause: Option<String>,
    /// Sub-cause code.
    pub subcause: Option<String>,
    /// When it was closed.
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Similarity, as for entries.
    pub score: f64,
}

/// What may solve an incident.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SuggestionsResponse {
    /// At most 5 published entries, most similar first.
    pub knowledge: Vec<SuggestedEntry>,
    /// At most 5 incidents closed as `resolved`, most similar first.
    pub incidents: Vec<SimilarIncidentResponse>,
}

/// Knowledge entries and past incidents like this one
///
/// While an incident is open: the published knowledge entries and the incidents closed as
/// `resolved` (any customer) most similar to it by title and description, the same subcategory or
/// category ranking higher.
///
/// Roles: staff.
#[utoipa::path(
    tag = "knowledge",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "Suggestions, most similar first", body = SuggestionsResponse),
        problems::ReadErrors
    )
)]
#[get("/incidents/{id}/suggestions")]
pub async fn get_suggestions(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let id = id.into_inner();
    let (entries, similar) = state
        .run_read(caller.id, move |conn| {
            let incident = store::incidents::find(conn, id)?;
            store::suggestions::suggest(conn, &incident, 5)
        })
        .await?;
    Ok(HttpResponse::Ok().json(SuggestionsResponse {
        knowledge: entries
            .into_iter()
            .map(|(entry, score)| SuggestedEntry { entry, score })
            .collect(),
        incidents: similar
            .into_iter()
            .map(|s| SimilarIncidentResponse {
                id: s.id,
                number: s.number,
                title: s.title,
                customer_id: s.customer_id,
                solution: s.solution,
                cause: s.cause,
                subcause: s.subcause,
                closed_at: s.closed_at,
                score: s.score,
            })
            .collect(),
    }))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_knowledge)
        .service(search_knowledge)
        .service(get_knowledge)
        .service(update_knowledge)
        .service(submit_knowledge)
        .service(approve_knowledge)
        .service(reject_knowledge)
        .service(retire_knowledge)
        .service(get_suggestions);
}
