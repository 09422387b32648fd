//! The knowledge base (SPEC §7, procedure §3 and §4.6.1): the service desk and L2 write up what
//! they learned, the expert group (L2 engineers and incident managers, 专家组) approves it — never
//! its own author — and published entries help the next engineer.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::incident::{UnknownCode, text_codes};
use super::role::{Role, Roles};
use super::taxonomy::Taxonomy;
use super::validation::{FieldError, check_text};

text_codes!(
    /// Where an entry is in its review.
    KnowledgeStatus, "status" {
        /// Being written by its author.
        Draft => "draft",
        /// Waiting for the expert group.
        Submitted => "submitted",
        /// Approved; customers see it.
        Published => "published",
        /// No longer offered.
        Retired => "retired",
    }
);

text_codes!(
    /// What can be done to an entry.
    KnowledgeAction, "action" {
        /// Change its text (the author, in draft).
        Edit => "edit",
        /// Hand it to the expert group (the author).
        Submit => "submit",
        /// Publish it (the expert group, not the author).
        Approve => "approve",
        /// Send it back to draft with a reason (the expert group).
        Reject => "reject",
        /// Withdraw a published entry (the expert group).
        Retire => "retire",
    }
);

/// The roles that write entries.
pub const AUTHORS: [Role; 3] = [Role::ServiceDesk, Role::L2Engineer, Role::IncidentManager];
/// The expert group: who reviews and retires.
pub const EXPERTS: [Role; 2] = [Role::L2Engineer, Role::IncidentManager];

/// An entry's text: what is searched and what an author edits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct KnowledgeText {
    pub title: String,
    pub symptom: String,
    pub cause: Option<String>,
    pub solution: String,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub tags: Vec<String>,
}

impl KnowledgeText {
    /// The weight-A text (the title) and the weight-B text (everything else) to index.
    pub fn searchable(&self) -> (String, String) {
        let body = [
            self.symptom.as_str(),
            self.cause.as_deref().unwrap_or_default(),
            self.solution.as_str(),
            &self.tags.join(" "),
        ]
        .join("\n");
        (self.title.clone(), body)
    }

    /// Field errors of the text, classification checked against `taxonomy`; the
    /// category follows from the subcategory when only that is given.
    pub fn check(mut self, taxonomy: &Taxonomy) -> Result<KnowledgeText, Vec<FieldError>> {
        let mut errors: Vec<FieldError> = [
            check_text("title", &self.title, 200),
            check_text("symptom", &self.symptom, 10_000),
            check_text("solution", &self.solution, 10_000),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        if let Some(cause) = &self.cause {
            errors.extend(check_text("cause", cause, 10_000).err());
        }
        if self.tags.len() > 20 {
            errors.push(FieldError::new("tags", "length", "at most 20 tags"));
        }
        if let Some(bad) = self
            .tags
            .iter()
            .find(|t| check_text("tags", t, 50).is_err())
        {
            errors.push(FieldError::new(
                "tags",
                "invalid",
                format!("`{bad}`: each tag has 1–50 characters and is not blank"),
            ));
        }
        if self.category.is_none() {
            self.category = self
                .subcategory
                .as_deref()
                .and_then(|s| taxonomy.category_of(s));
        }
        match (&self.category, &self.subcategory) {
            (Some(category), _) if !taxonomy.has_category(category) => {
                errors.push(FieldError::new(
                    "category",
                    "unknown",
                    format!("`{category}` is not a category"),
                ))
            }
            (Some(category), Some(sub)) if taxonomy.subcategory(category, sub).is_none() => errors
                .push(FieldError::new(
                    "subcategory",
                    "unknown",
                    format!("`{sub}` is not a subcategory of `{category}`"),
                )),
            (None, Some(sub)) => errors.push(FieldError::new(
                "subcategory",
                "unknown",
                format!("`{sub}` is not a subcategory"),
            )),
            _ => {}
        }
        self.title = self.title.trim().to_owned();
        self.tags = self.tags.iter().map(|t| t.trim().to_owned()).collect();
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

/// A knowledge entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[allow(missing_docs)]
#[schema(example = json!({"id": 1, "title": "收费模块保存处方失败", "symptom": "录入处方时提示“保存失败”，只在个别窗口出现。", "cause": "客户端版本过旧，保存接口字段长度校验不一致。", "solution": "为该窗口重新部署最新客户端。", "category": "usage_issue", "subcategory": "module_input_blocked", "tags": ["收费", "处方", "客户端"], "source_incident_id": 1, "status": "published", "author_id": 2, "reviewed_by": 4, "reject_reason": null, "times_used": 3, "created_at": "2026-12-07T09:15:00Z", "updated_at": "2026-12-07T09:15:00Z", "published_at": "2026-12-07T09:15:00Z", "version": 3}))]
pub struct KnowledgeEntry {
    pub id: i64,
    #[schema(example = "升级出错：数据库脚本执行失败（ORA-00942）")]
    pub title: String,
    #[schema(example = "升级 HIS 后收费模块报错 ORA-00942: 表或视图不存在")]
    pub symptom: String,
    pub cause: Option<String>,
    #[schema(example = "重新执行升级包中的数据库脚本 upgrade_fee.sql，再重启收费服务")]
    pub solution: String,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub tags: Vec<String>,
    /// Staff only: customers never receive it.
    #[schema(required = false)]
    pub source_incident_id: Option<i64>,
    pub status: KnowledgeStatus,
    /// Staff only: customers never receive it.
    #[schema(required = false)]
    pub author_id: i64,
    /// Staff only: customers never receive it.
    #[schema(required = false)]
    pub reviewed_by: Option<i64>,
    /// Staff only: customers never receive it.
    #[schema(required = false)]
    pub reject_reason: Option<String>,
    /// How many incidents were resolved with it.
    pub times_used: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub version: i32,
}

/// Why a knowledge command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnowledgeError {
    /// The state does not allow the action (409 `illegal_transition`).
    #[error("`{action}` is not allowed while the entry is {status}")]
    IllegalTransition {
        /// Current status.
        status: KnowledgeStatus,
        /// The refused action.
        action: KnowledgeAction,
    },
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Fields break the rules (422).
    #[error("invalid fields: {0:?}")]
    Invalid(Vec<FieldError>),
}

/// The actions an entry's state allows.
pub fn allowed_actions(status: KnowledgeStatus) -> &'static [KnowledgeAction] {
    match status {
        KnowledgeStatus::Draft => &[KnowledgeAction::Edit, KnowledgeAction::Submit],
        KnowledgeStatus::Submitted => &[KnowledgeAction::Approve, KnowledgeAction::Reject],
        KnowledgeStatus::Published => &[KnowledgeAction::Retire],
        KnowledgeStatus::Retired => &[],
    }
}

/// Whether `caller` may add files to `entry` or remove them (SPEC §13): its author, while it is
/// a draft (the files are part of the text reviewers approve).
pub fn may_change_files(entry: &KnowledgeEntry, caller: i64) -> Result<(), KnowledgeError> {
    if entry.status != KnowledgeStatus::Draft {
        return Err(KnowledgeError::IllegalTransition {
            status: entry.status,
            action: KnowledgeAction::Edit,
        });
    }
    if entry.author_id != caller {
        return Err(KnowledgeError::Forbidden(
            "Files of a knowledge entry are added and removed by its author.".into(),
        ));
    }
    Ok(())
}

/// Who may write an entry at all.
pub fn check_author(roles: &Roles) -> Result<(), KnowledgeError> {
    if roles.has_any(&AUTHORS) {
        Ok(())
    } else {
        Err(KnowledgeError::Forbidden(
            "Knowledge entries are written by the service desk, L2 engineers and incident managers."
                .into(),
        ))
    }
}

/// Changes to a draft's text: `None` keeps a field, `Some(None)` clears an optional one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct KnowledgePatch {
    pub title: Option<String>,
    pub symptom: Option<String>,
    pub cause: Option<Option<String>>,
    pub solution: Option<String>,
    pub category: Option<Option<String>>,
    pub subcategory: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
}

impl KnowledgePatch {
    /// `text` with the patch applied.
    fn apply(self, text: KnowledgeText) -> KnowledgeText {
        // A new subcategory without a category takes its own category, not the old one.
        let category = match (&self.category, &self.subcategory) {
            (None, Some(_)) => None,
            (Some(c), _) => c.clone(),
            (None, None) => text.category,
        };
        KnowledgeText {
            title: self.title.unwrap_or(text.title),
            symptom: self.symptom.unwrap_or(text.symptom),
            cause: self.cause.unwrap_or(text.cause),
            solution: self.solution.unwrap_or(text.solution),
            category,
            subcategory: self.subcategory.unwrap_or(text.subcategory),
            tags: self.tags.unwrap_or(text.tags),
        }
    }
}

impl KnowledgeEntry {
    /// A new draft `id` of `text` (already checked) by `author_id`, written `now`.
    pub fn draft(
        id: i64,
        author_id: i64,
        text: KnowledgeText,
        source_incident_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> KnowledgeEntry {
        KnowledgeEntry {
            id,
            title: text.title,
            symptom: text.symptom,
            cause: text.cause,
            solution: text.solution,
            category: text.category,
            subcategory: text.subcategory,
            tags: text.tags,
            source_incident_id,
            status: KnowledgeStatus::Draft,
            author_id,
            reviewed_by: None,
            reject_reason: None,
            times_used: 0,
            created_at: now,
            updated_at: now,
            published_at: None,
            version: 1,
        }
    }

    /// Its text.
    pub fn text(&self) -> KnowledgeText {
        KnowledgeText {
            title: self.title.clone(),
            symptom: self.symptom.clone(),
            cause: self.cause.clone(),
            solution: self.solution.clone(),
            category: self.category.clone(),
            subcategory: self.subcategory.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// A review or life-cycle step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnowledgeCommand {
    /// Change the text (the author, in draft).
    Edit(KnowledgePatch),
    /// Submit for review.
    Submit,
    /// Publish.
    Approve,
    /// Back to draft, saying why.
    Reject {
        /// Why.
        reason: String,
    },
    /// Withdraw.
    Retire,
}

impl KnowledgeCommand {
    fn action(&self) -> KnowledgeAction {
        match self {
            KnowledgeCommand::Edit(_) => KnowledgeAction::Edit,
            KnowledgeCommand::Submit => KnowledgeAction::Submit,
            KnowledgeCommand::Approve => KnowledgeAction::Approve,
            KnowledgeCommand::Reject { .. } => KnowledgeAction::Reject,
            KnowledgeCommand::Retire => KnowledgeAction::Retire,
        }
    }
}

/// True when a decision took an entry from `before` to published: what `knowledge.published`
/// announces (SPEC §12).
pub fn publishes(before: &KnowledgeEntry, after: &KnowledgeEntry) -> bool {
    before.status != KnowledgeStatus::Published && after.status == KnowledgeStatus::Published
}

/// Decides `command` by `caller` (with `roles`) on `entry`: the state first (409), then who
/// (403, four eyes: nobody approves their own entry), then the fields (422).
pub fn decide_entry(
    entry: &KnowledgeEntry,
    caller: i64,
    roles: &Roles,
    command: KnowledgeCommand,
    taxonomy: &Taxonomy,
    now: DateTime<Utc>,
) -> Result<KnowledgeEntry, KnowledgeError> {
    let action = command.action();
    if !allowed_actions(entry.status).contains(&action) {
        return Err(KnowledgeError::IllegalTransition {
            status: entry.status,
            action,
        });
    }
    let own = entry.author_id == caller;
    let expert = roles.has_any(&EXPERTS);
    let mut next = entry.clone();
    match command {
        KnowledgeCommand::Edit(patch) => {
            if !own {
                return Err(KnowledgeError::Forbidden(
                    "Only the entry's author edits it.".into(),
                ));
            }
            let text = patch
                .apply(entry.text())
                .check(taxonomy)
                .map_err(KnowledgeError::Invalid)?;
            next.title = text.title;
            next.symptom = text.symptom;
            next.cause = text.cause;
            next.solution = text.solution;
            next.category = text.category;
            next.subcategory = text.subcategory;
            next.tags = text.tags;
        }
        KnowledgeCommand::Submit => {
            if !own {
                return Err(KnowledgeError::Forbidden(
                    "Only the entry's author submits it.".into(),
                ));
            }
            next.status = KnowledgeStatus::Submitted;
            next.reject_reason = None;
        }
        KnowledgeCommand::Approve | KnowledgeCommand::Reject { .. } | KnowledgeCommand::Retire
            if !expert =>
        {
            return Err(KnowledgeError::Forbidden(
                "Entries are reviewed by the expert group: L2 engineers and incident managers."
                    .into(),
            ));
        }
        KnowledgeCommand::Approve => {
            if own {
                return Err(KnowledgeError::Forbidden(
                    "Four eyes: another expert approves an entry, never its author.".into(),
                ));
            }
            next.status = KnowledgeStatus::Published;
            next.reviewed_by = Some(caller);
            next.published_at = Some(now);
        }
        KnowledgeCommand::Reject { reason } => {
            check_text("reason", &reason, 10_000).map_err(|e| KnowledgeError::Invalid(vec![e]))?;
            next.status = KnowledgeStatus::Draft;
            next.reviewed_by = Some(caller);
            next.reject_reason = Some(reason);
        }
        KnowledgeCommand::Retire => next.status = KnowledgeStatus::Retired,
    }
    next.updated_at = now;
    next.version += 1;
    Ok(next)
}

/// Who reads the knowledge base: staff (every status) and customer users (published only).
pub const READERS: [Role; 5] = [
    Role::ServiceDesk,
    Role::L2Engineer,
    Role::OpsStaff,
    Role::IncidentManager,
    Role::Customer,
];

/// What a customer user may not learn of an entry: who wrote and reviewed it, why a draft was
/// sent back, and the incident it came from (perhaps another organisation's). Customers read the
/// title, symptom, cause, solution, classification, tags and dates.
pub const STAFF_ONLY_FIELDS: [&str; 4] = [
    "author_id",
    "reviewed_by",
    "reject_reason",
    "source_incident_id",
];

/// Removes from an entry's JSON what [`STAFF_ONLY_FIELDS`] names.
pub fn withhold_from_customers(entry: &mut serde_json::Value) {
    if let Some(fields) = entry.as_object_mut() {
        for field in STAFF_ONLY_FIELDS {
            fields.remove(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::taxonomy::tests_support::small_taxonomy;

    const AUTHOR: i64 = 2;
    const EXPERT: i64 = 5;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T01:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn text() -> KnowledgeText {
        KnowledgeText {
            title: "升级出错".into(),
            symptom: "ORA-00942".into(),
            solution: "重新执行脚本".into(),
            subcategory: Some("unusable_after_upgrade".into()),
            ..KnowledgeText::default()
        }
    }

    fn entry(status: KnowledgeStatus) -> KnowledgeEntry {
        let text = text().check(&small_taxonomy()).unwrap();
        KnowledgeEntry {
            status,
            ..KnowledgeEntry::draft(1, AUTHOR, text, None, now())
        }
    }

    fn run(
        status: KnowledgeStatus,
        caller: i64,
        role: Role,
        command: KnowledgeCommand,
    ) -> Result<KnowledgeEntry, KnowledgeError> {
        decide_entry(
            &entry(status),
            caller,
            &Roles::new([role]),
            command,
            &small_taxonomy(),
            now(),
        )
    }

    #[test]
    fn the_text_is_checked_and_the_category_follows_the_subcategory() {
        let checked = text().check(&small_taxonomy()).unwrap();
        assert_eq!(checked.category.as_deref(), Some("upgrade_issue"));
        let bad = KnowledgeText {
            title: " ".into(),
            subcategory: Some("nope".into()),
            tags: vec!["".into()],
            ..text()
        };
        let fields: Vec<String> = bad
            .check(&small_taxonomy())
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["title", "tags", "subcategory"]);
    }

    #[test]
    fn draft_submitted_published_retired_with_four_eyes() {
        use KnowledgeStatus::*;
        let submitted = run(Draft, AUTHOR, Role::ServiceDesk, KnowledgeCommand::Submit);
        assert_eq!(submitted.map(|e| e.status), Ok(Submitted));
        let approved = run(
            Submitted,
            EXPERT,
            Role::L2Engineer,
            KnowledgeCommand::Approve,
        )
        .unwrap();
        assert_eq!(
            (approved.status, approved.reviewed_by),
            (Published, Some(EXPERT))
        );
        assert!(approved.published_at.is_some());
        // Never one's own entry, never by the desk.
        assert!(matches!(
            run(
                Submitted,
                AUTHOR,
                Role::L2Engineer,
                KnowledgeCommand::Approve
            ),
            Err(KnowledgeError::Forbidden(_))
        ));
        assert!(matches!(
            run(
                Submitted,
                EXPERT,
                Role::ServiceDesk,
                KnowledgeCommand::Approve
            ),
            Err(KnowledgeError::Forbidden(_))
        ));
        let rejected = run(
            Submitted,
            EXPERT,
            Role::IncidentManager,
            KnowledgeCommand::Reject {
                reason: "缺少原因".into(),
            },
        )
        .unwrap();
        assert_eq!(
            (rejected.status, rejected.reject_reason.as_deref()),
            (Draft, Some("缺少原因"))
        );
        assert_eq!(
            run(
                Published,
                EXPERT,
                Role::L2Engineer,
                KnowledgeCommand::Retire
            )
            .map(|e| e.status),
            Ok(Retired)
        );
    }

    #[test]
    fn the_state_is_checked_first_then_who_then_fields() {
        use KnowledgeStatus::*;
        for (status, command) in [
            (Published, KnowledgeCommand::Approve),
            (Draft, KnowledgeCommand::Approve),
            (Submitted, KnowledgeCommand::Edit(KnowledgePatch::default())),
            (Retired, KnowledgeCommand::Retire),
        ] {
            assert!(matches!(
                run(status, 99, Role::Customer, command),
                Err(KnowledgeError::IllegalTransition { .. })
            ));
        }
        assert!(matches!(
            run(
                Draft,
                EXPERT,
                Role::L2Engineer,
                KnowledgeCommand::Edit(KnowledgePatch::default())
            ),
            Err(KnowledgeError::Forbidden(_))
        ));
        let patch = KnowledgePatch {
            title: Some("升级后报错".into()),
            cause: Some(None),
            ..KnowledgePatch::default()
        };
        let edited = run(
            Draft,
            AUTHOR,
            Role::ServiceDesk,
            KnowledgeCommand::Edit(patch),
        )
        .unwrap();
        assert_eq!((edited.title.as_str(), edited.version), ("升级后报错", 2));
        assert!(matches!(
            run(
                Submitted,
                EXPERT,
                Role::L2Engineer,
                KnowledgeCommand::Reject { reason: " ".into() }
            ),
            Err(KnowledgeError::Invalid(_))
        ));
    }

    #[test]
    fn only_the_step_into_published_is_announced() {
        use KnowledgeStatus::*;
        assert!(publishes(&entry(Submitted), &entry(Published)));
        assert!(!publishes(&entry(Published), &entry(Published)));
        assert!(!publishes(&entry(Draft), &entry(Submitted)));
        assert!(!publishes(&entry(Published), &entry(Retired)));
    }
}
