//! What incident endpoints accept, and how each request becomes a domain command.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::api::codes::{CauseCode, SubcauseCode};
use crate::domain::incident::{
    Channel, ClosureCode, IncidentKind, NoteVisibility, Reporter, Status, Tier,
};
use crate::domain::level::Level;
use crate::domain::validation::{FieldError, check_text, rule};
use crate::domain::workflow::{IncidentCommand, IncidentDraft, IncidentEdit, Resolution};
use crate::error::AppError;
use crate::store::incident_list::SortKey;

fn title_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("title", value, 200))
}

fn long_text_rule(value: &str) -> Result<(), ValidationError> {
    rule(check_text("text", value, 10_000))
}

/// A new incident.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "门诊收费模块无法录入", "description": "收费窗口 3 号机录入处方时提示“保存失败”，其他窗口正常。", "customer_id": 1, "ci_id": 1, "channel": "phone", "category": "usage_issue", "subcategory": "module_input_blocked", "reporter": {"name": "李娜", "phone": "010-6555-0101", "email": "li.na@hospital.example"}}))]
pub struct CreateIncidentRequest {
    /// Default `fault`.
    pub kind: Option<IncidentKind>,
    /// Default `web` for customer users, `monitoring` for integrations, `phone` for staff.
    pub channel: Option<Channel>,
    /// 1–200 characters.
    #[validate(custom(function = "title_rule"))]
    #[schema(
        example = "HIS 门诊收费模块无法录入",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub title: String,
    /// Up to 10 000 characters.
    #[validate(length(max = 10000))]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// Required for staff; a customer user's own organisation by default (and only that).
    pub customer_id: Option<i64>,
    /// Who reported it; a customer user is the reporter by default. Makes the incident
    /// user-reported: it is closed only after the reporter confirms the resolution.
    #[validate(nested)]
    pub reporter: Option<Reporter>,
    /// The IT / application system concerned.
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "HIS", min_length = 1, max_length = 200)]
    pub source_system: Option<String>,
    /// A configuration item of the same customer.
    pub ci_id: Option<i64>,
    /// Category code (GET /api/v1/taxonomy); inferred from the subcategory when omitted.
    #[schema(example = "usage_issue")]
    pub category: Option<String>,
    /// Subcategory code; gives the default level.
    #[schema(example = "module_input_blocked")]
    pub subcategory: Option<String>,
    /// Level; default the subcategory's, else `low`. Staff only.
    pub level: Option<Level>,
    /// Holds up on-site work: a `low` incident becomes `medium`.
    pub affects_onsite_work: Option<bool>,
    /// Holds up the data upload: the incident becomes `high` and is due by the upload cut-off.
    pub affects_data_upload: Option<bool>,
    /// The closed incident this one is a recurrence of (a closed incident is never reopened).
    pub recurrence_of: Option<i64>,
}

/// Changes to an incident's descriptive fields; absent fields stay as they are, `null` clears
/// a clearable one.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "收费窗口 3 号机录入处方时提示“保存失败”；重启客户端后仍然出现。", "affects_onsite_work": true}))]
pub struct UpdateIncidentRequest {
    /// New title.
    #[validate(custom(function = "title_rule"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub title: Option<String>,
    /// New description.
    #[validate(length(max = 10000))]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// Corrected reporter details. `null` removes the reporter of an incident that is not
    /// user-reported; a user-reported incident keeps its reporter (422 on `reporter`).
    #[serde(default, deserialize_with = "crate::api::extract::clearable")]
    #[schema(value_type = Option<Reporter>)]
    pub reporter: Option<Option<Reporter>>,
    /// New system (`null` clears).
    #[serde(default, deserialize_with = "crate::api::extract::clearable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200)]
    pub source_system: Option<Option<String>>,
    /// The customer of an incident monitoring opened for no known customer; set once, after
    /// which customer users of that organisation see the incident. The customer of any other
    /// incident does not change.
    pub customer_id: Option<i64>,
    /// New configuration item (`null` clears).
    #[serde(default, deserialize_with = "crate::api::extract::clearable")]
    #[schema(value_type = Option<i64>)]
    pub ci_id: Option<Option<i64>>,
    /// New kind.
    pub kind: Option<IncidentKind>,
    /// New channel.
    pub channel: Option<Channel>,
    /// New category (`null` clears; clearing it clears the subcategory too).
    #[serde(default, deserialize_with = "crate::api::extract::clearable")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Option<String>>,
    /// New subcategory (`null` clears).
    #[serde(default, deserialize_with = "crate::api::extract::clearable")]
    #[schema(value_type = Option<String>)]
    pub subcategory: Option<Option<String>>,
    /// Holds up on-site work.
    pub affects_onsite_work: Option<bool>,
    /// Holds up the data upload.
    pub affects_data_upload: Option<bool>,
}

pub(super) fn validate_patch(request: &UpdateIncidentRequest) -> Result<(), AppError> {
    let mut errors: Vec<FieldError> = Vec::new();
    if let Some(Some(reporter)) = &request.reporter
        && let Err(AppError::Validation(list)) = crate::api::extract::validate(reporter)
    {
        errors.extend(list.into_iter().map(|mut f| {
            f.field = format!("reporter.{}", f.field);
            f
        }));
    }
    if let Some(Some(system)) = &request.source_system
        && let Err(e) = check_text("source_system", system, 200)
    {
        errors.push(e);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Take a new incident into work.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({}))]
pub struct AcceptRequest {
    /// Engineer to work it: an active service-desk user (tier l1), L2 engineer (tier l2) or
    /// incident manager. Default: the caller.
    pub assignee_id: Option<i64>,
}

/// A temporary measure.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "临时改用 2 号窗口录入，3 号机暂停使用。"}))]
pub struct WorkaroundRequest {
    /// What was done to restore the service, 1–10 000 characters.
    #[validate(custom(function = "long_text_rule"))]
    #[schema(
        example = "切换到备用收费终端",
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub description: String,
}

/// The resolution.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"solution": "修复收费模块保存接口的字段长度校验，并为 3 号机重新部署客户端。", "cause": "system_defect", "subcause": "module_unusable"}))]
pub struct ResolveRequest {
    /// How it was solved, 1–10 000 characters.
    #[validate(custom(function = "long_text_rule"))]
    #[schema(
        example = "重新部署收费模块补丁 2.3.1",
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub solution: String,
    /// Cause code (GET /api/v1/taxonomy).
    #[schema(value_type = CauseCode, example = "system_defect")]
    pub cause: String,
    /// Sub-cause code of that cause.
    #[schema(value_type = SubcauseCode, example = "module_unusable")]
    pub subcause: String,
    /// Classify in the same request when the incident has no category yet.
    pub category: Option<String>,
    /// Classify in the same request when the incident has no subcategory yet.
    pub subcategory: Option<String>,
    /// The published knowledge entry that solved it; the entry counts the use (`times_used`).
    pub knowledge_entry_id: Option<i64>,
}

/// The reporter's confirmation.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"channel": "phone"}))]
pub struct ConfirmRequest {
    /// How the confirmation was obtained when the service desk records it (e.g. `phone`).
    pub channel: Option<Channel>,
}

/// The reporter's rejection.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "用户反馈 3 号机仍然无法保存处方。"}))]
pub struct RejectResolutionRequest {
    /// Why the resolution does not solve the problem, 1–10 000 characters.
    #[validate(custom(function = "long_text_rule"))]
    #[schema(
        example = "收费模块仍然无法录入",
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub reason: String,
}

/// Closing an incident.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"closure_code": "resolved", "note": "用户电话确认已恢复正常。"}))]
pub struct CloseRequest {
    /// `resolved` or `unresolved` from `resolved`; `duplicate` or `withdrawn` from `new` or
    /// `in_progress`.
    pub closure_code: ClosureCode,
    /// The incident this one duplicates (`duplicate` only).
    pub duplicate_of: Option<i64>,
    /// Why; required for `withdrawn`.
    #[validate(length(max = 10000))]
    #[schema(max_length = 10000)]
    pub note: Option<String>,
}

/// The reporter's request to drop the incident.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"channel": "phone", "note": "用户来电：重启后已恢复，要求撤销。"}))]
pub struct WithdrawRequest {
    /// How the request reached the service desk (e.g. `phone`); required when the desk records
    /// it.
    #[schema(example = "phone")]
    pub channel: Option<Channel>,
    /// What the reporter said, up to 10 000 characters; required when the desk records it.
    #[validate(length(max = 10000))]
    #[schema(example = "故障已自行恢复，用户要求撤销", max_length = 10000)]
    pub note: Option<String>,
}

/// A hand-off to another engineer of the incident's tier.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"assignee_id": 3, "reason": "交接班：由夜班服务台继续跟进。"}))]
pub struct AssignRequest {
    /// An active user of the incident's tier: `service_desk` for l1, `l2_engineer` for l2.
    pub assignee_id: i64,
    /// Why it is handed on (shift change, specialist, ...), 1–10 000 characters.
    #[validate(custom(function = "long_text_rule"))]
    #[schema(
        example = "交接班：转交夜班值班工程师",
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub reason: String,
}

/// A note.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"visibility": "public", "body": "已远程连接 3 号机，正在收集客户端日志。"}))]
pub struct CreateNoteRequest {
    /// `internal` (staff only) or `public`. Default: `public` for customer users, `internal` for staff.
    pub visibility: Option<NoteVisibility>,
    /// Attachments of this incident the note names (at most 50; a public note names public
    /// ones only).
    #[validate(length(max = 50))]
    pub attachment_ids: Option<Vec<i64>>,
    /// Text, 1–10 000 characters.
    #[validate(custom(function = "long_text_rule"))]
    #[schema(
        example = "已远程连接，正在检查日志",
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*\\S[^\\u0000]*$"
    )]
    pub body: String,
}

/// Sort orders of `GET /incidents`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
pub enum IncidentSort {
    /// Newest first (default).
    #[default]
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    /// Oldest first.
    #[serde(rename = "created_at")]
    CreatedAt,
    /// Earliest deadline first.
    #[serde(rename = "due_at")]
    DueAt,
    /// Latest deadline first.
    #[serde(rename = "-due_at")]
    DueAtDesc,
    /// Lowest level first.
    #[serde(rename = "level")]
    Level,
    /// Highest level first.
    #[serde(rename = "-level")]
    LevelDesc,
    /// Least recently changed first: the order for polling with `updated_since`.
    #[serde(rename = "updated_at")]
    UpdatedAt,
    /// Most recently changed first.
    #[serde(rename = "-updated_at")]
    UpdatedAtDesc,
    /// Most relevant to `q` first (the default when `q` is given); newest first without `q`.
    #[serde(rename = "relevance")]
    Relevance,
}

impl IncidentSort {
    pub(super) fn key(self) -> (SortKey, bool) {
        match self {
            IncidentSort::CreatedAtDesc => (SortKey::CreatedAt, true),
            IncidentSort::CreatedAt => (SortKey::CreatedAt, false),
            IncidentSort::DueAt => (SortKey::DueAt, false),
            IncidentSort::DueAtDesc => (SortKey::DueAt, true),
            IncidentSort::Level => (SortKey::Level, false),
            IncidentSort::LevelDesc => (SortKey::Level, true),
            IncidentSort::UpdatedAt => (SortKey::UpdatedAt, false),
            IncidentSort::UpdatedAtDesc => (SortKey::UpdatedAt, true),
            IncidentSort::Relevance => (SortKey::Relevance, true),
        }
    }

    pub(super) fn code(self) -> &'static str {
        match self {
            IncidentSort::CreatedAtDesc => "-created_at",
            IncidentSort::CreatedAt => "created_at",
            IncidentSort::DueAt => "due_at",
            IncidentSort::DueAtDesc => "-due_at",
            IncidentSort::Level => "level",
            IncidentSort::LevelDesc => "-level",
            IncidentSort::UpdatedAt => "updated_at",
            IncidentSort::UpdatedAtDesc => "-updated_at",
            IncidentSort::Relevance => "relevance",
        }
    }
}

/// The `assignee_id` filter: a user's id, or `none` (unassigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssigneeParam(pub Option<i64>);

impl<'de> Deserialize<'de> for AssigneeParam {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "none" {
            return Ok(AssigneeParam(None));
        }
        text.parse::<i64>()
            .map(|id| AssigneeParam(Some(id)))
            .map_err(|_| serde::de::Error::custom("must be a user id or `none`"))
    }
}

/// Filters and order of `GET /incidents`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListIncidentsQuery {
    /// Status; repeat for several (`status=new&status=in_progress`).
    #[serde(default)]
    pub status: Vec<Status>,
    /// Level.
    pub level: Option<Level>,
    /// Tier.
    pub tier: Option<Tier>,
    /// Assignee: a user id, or `none` for incidents nobody works yet.
    #[param(value_type = Option<String>, pattern = "^([0-9]{1,18}|none)$", example = "none")]
    pub assignee_id: Option<AssigneeParam>,
    /// Customer organisation.
    pub customer_id: Option<i64>,
    /// Category code.
    #[validate(length(max = 64))]
    #[param(max_length = 64)]
    pub category: Option<String>,
    /// Subcategory code.
    #[validate(length(max = 64))]
    #[param(max_length = 64)]
    pub subcategory: Option<String>,
    /// Configuration item.
    pub ci_id: Option<i64>,
    /// Missed (or not) the deadline.
    pub sla_breached: Option<bool>,
    /// `true`: user-reported incidents resolved and still waiting for the reporter's answer,
    /// the desk's queue of calls to make; `false`: every other incident.
    pub awaiting_confirmation: Option<bool>,
    /// Created at or after (RFC 3339).
    pub created_from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub created_to: Option<DateTime<Utc>>,
    /// Changed at or after (RFC 3339): what a polling client has not seen yet. Sort by
    /// `updated_at` to walk the changes in order, and poll again from the last `updated_at`
    /// seen, a few seconds back: a change that commits late may carry a slightly earlier time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Words to find: in the number, title, description, solution, workaround and
    /// notes (internal notes for staff only). Chinese is segmented into words, English stemmed
    /// and case-folded, every word must match, in any order. A number (`INC-000123`) lists that
    /// incident first. Ranked by relevance unless `sort` is named.
    #[validate(length(max = 200))]
    #[param(max_length = 200, pattern = "^[^\\u0000]*$")]
    pub q: Option<String>,
    /// Order: `-created_at` (default without `q`), `created_at`, `due_at`, `-due_at`, `level`,
    /// `-level`, `updated_at`, `-updated_at`, `relevance` (default with `q`).
    /// A `cursor` continues only the order it was made in.
    #[param(value_type = Option<IncidentSort>)]
    pub sort: Option<IncidentSort>,
}

impl From<CreateIncidentRequest> for IncidentDraft {
    fn from(r: CreateIncidentRequest) -> Self {
        IncidentDraft {
            kind: r.kind,
            channel: r.channel,
            title: r.title,
            description: r.description,
            customer_id: r.customer_id,
            reporter: r.reporter,
            source_system: r.source_system,
            ci_id: r.ci_id,
            category: r.category,
            subcategory: r.subcategory,
            level: r.level,
            affects_onsite_work: r.affects_onsite_work,
            affects_data_upload: r.affects_data_upload,
            recurrence_of: r.recurrence_of,
        }
    }
}

impl From<UpdateIncidentRequest> for IncidentCommand {
    fn from(r: UpdateIncidentRequest) -> Self {
        IncidentCommand::Edit(IncidentEdit {
            title: r.title,
            description: r.description,
            reporter: r.reporter,
            source_system: r.source_system,
            customer_id: r.customer_id,
            ci_id: r.ci_id,
            kind: r.kind,
            channel: r.channel,
            category: r.category,
            subcategory: r.subcategory,
            affects_onsite_work: r.affects_onsite_work,
            affects_data_upload: r.affects_data_upload,
        })
    }
}

impl From<AcceptRequest> for IncidentCommand {
    fn from(r: AcceptRequest) -> Self {
        IncidentCommand::Accept {
            assignee_id: r.assignee_id,
        }
    }
}

impl From<WorkaroundRequest> for IncidentCommand {
    fn from(r: WorkaroundRequest) -> Self {
        IncidentCommand::Workaround {
            description: r.description,
        }
    }
}

impl From<ResolveRequest> for IncidentCommand {
    fn from(r: ResolveRequest) -> Self {
        IncidentCommand::Resolve(Resolution {
            solution: r.solution,
            cause: r.cause,
            subcause: r.subcause,
            category: r.category,
            subcategory: r.subcategory,
            knowledge_entry_id: r.knowledge_entry_id,
        })
    }
}

impl From<ConfirmRequest> for IncidentCommand {
    fn from(r: ConfirmRequest) -> Self {
        IncidentCommand::Confirm { channel: r.channel }
    }
}

impl From<RejectResolutionRequest> for IncidentCommand {
    fn from(r: RejectResolutionRequest) -> Self {
        IncidentCommand::RejectResolution {
            reason: r.reason,
            channel: None,
        }
    }
}

impl From<WithdrawRequest> for IncidentCommand {
    fn from(r: WithdrawRequest) -> Self {
        IncidentCommand::Withdraw {
            channel: r.channel,
            note: r.note,
        }
    }
}

impl From<AssignRequest> for IncidentCommand {
    fn from(r: AssignRequest) -> Self {
        IncidentCommand::Assign {
            assignee_id: r.assignee_id,
            reason: r.reason,
        }
    }
}

impl From<CloseRequest> for IncidentCommand {
    fn from(r: CloseRequest) -> Self {
        IncidentCommand::Close {
            closure_code: r.closure_code,
            duplicate_of: r.duplicate_of,
            note: r.note,
        }
    }
}
