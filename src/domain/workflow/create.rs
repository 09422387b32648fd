//! Creating an incident (SPEC §4, §4.1): organisation, reporter, channel, classification, level
//! and deadline.

use chrono::{DateTime, Utc};

use super::super::incident::{Channel, Incident, IncidentKind, Link, Reporter, Status, Tier};
use super::super::level::Level;
use super::super::role::Role;
use super::super::sla::{self, Deadlines, UploadCutoff};
use super::super::state_machine::TransitionError;
use super::super::taxonomy::Taxonomy;
use super::{Caller, CiRef, HistoryEntry, IncidentEvent, IncidentRef, check_ci, diff, invalid};

/// A new incident as reported, before the rules fill in defaults, level and deadline.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct IncidentDraft {
    pub kind: Option<IncidentKind>,
    pub channel: Option<Channel>,
    pub title: String,
    pub description: Option<String>,
    pub customer_id: Option<i64>,
    pub reporter: Option<Reporter>,
    pub source_system: Option<String>,
    pub ci_id: Option<i64>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub level: Option<Level>,
    pub affects_onsite_work: Option<bool>,
    pub affects_data_upload: Option<bool>,
    pub recurrence_of: Option<i64>,
}

/// The organisation a new incident belongs to: a customer user's own (and only that), else the
/// one named.
pub fn customer_of_new(caller: &Caller, asked: Option<i64>) -> Result<i64, TransitionError> {
    match (caller.confined_to_customer(), asked) {
        (Some(own), Some(asked)) if asked != own => Err(TransitionError::Forbidden(
            "A customer user reports incidents for its own organisation only.".into(),
        )),
        (Some(own), _) => Ok(own),
        (None, Some(asked)) => Ok(asked),
        (None, None) => Err(invalid("customer_id", "required", "is required")),
    }
}

/// A customer organisation named at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerFacts {
    /// Id.
    pub id: i64,
    /// Still served.
    pub active: bool,
}

/// The facts looked up before creating an incident.
#[derive(Debug, Clone)]
pub struct CreationLookups<'a> {
    /// Creation time.
    pub now: DateTime<Utc>,
    /// The classification codes.
    pub taxonomy: &'a Taxonomy,
    /// The organisation, when it exists.
    pub customer: Option<CustomerFacts>,
    /// The configuration item named, when it exists.
    pub ci: Option<CiRef>,
    /// The incident this one recurs, when it exists.
    pub recurrence: Option<IncidentRef>,
    /// The deadlines in force.
    pub deadlines: Deadlines,
    /// The daily upload cut-off, when configured.
    pub upload_cutoff: Option<UploadCutoff>,
}

/// An incident ready to be stored; the store adds id, number and version.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct NewIncident {
    pub kind: IncidentKind,
    pub channel: Channel,
    pub title: String,
    pub description: String,
    pub customer_id: Option<i64>,
    pub reporter: Option<Reporter>,
    pub user_reported: bool,
    pub source_system: Option<String>,
    pub ci_id: Option<i64>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub level: Level,
    pub affects_onsite_work: bool,
    pub affects_data_upload: bool,
    pub status: Status,
    pub tier: Tier,
    pub due_at: DateTime<Utc>,
    pub recurrence_of: Option<i64>,
    pub dedup_key: Option<String>,
    pub last_occurrence_at: Option<DateTime<Utc>>,
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub links: Vec<Link>,
}

impl NewIncident {
    /// The incident as stored under `id` and `number`, before any change: what the store reads
    /// back after inserting it, for writers that assign ids themselves (demo data).
    pub fn into_incident(self, id: i64, number: String) -> Incident {
        Incident {
            id,
            number,
            kind: self.kind,
            channel: self.channel,
            title: self.title,
            description: self.description,
            customer_id: self.customer_id,
            reporter: self.reporter,
            user_reported: self.user_reported,
            source_system: self.source_system,
            ci_id: self.ci_id,
            category: self.category,
            subcategory: self.subcategory,
            level: self.level,
            affects_onsite_work: self.affects_onsite_work,
            affects_data_upload: self.affects_data_upload,
            status: self.status,
            tier: self.tier,
            assignee_id: None,
            workaround: None,
            workaround_applied: false,
            solution: None,
            cause: None,
            subcause: None,
            due_at: self.due_at,
            accepted_at: None,
            resolved_at: None,
            user_confirmed_at: None,
            withdrawal_requested_at: None,
            closed_at: None,
            closed_by: None,
            closure_code: None,
            duplicate_of: None,
            recurrence_of: self.recurrence_of,
            occurrences: 1,
            last_occurrence_at: self.last_occurrence_at,
            dedup_key: self.dedup_key,
            change_ref: None,
            follow_up_due_at: None,
            knowledge_entry_id: None,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.created_at,
            version: 1,
            links: self.links,
        }
    }
}

/// What to do with a new report that duplicates an unresolved incident; without a
/// choice the report is refused, naming the incident it duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnDuplicate {
    /// Record the report on the existing incident (`occurrences += 1`).
    Append,
    /// Open a new incident anyway.
    Create,
}

/// What makes two reports the same fault (SPEC §8): customer, system, configuration item and
/// subcategory, all set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateSignature {
    /// Customer.
    pub customer_id: i64,
    /// System.
    pub source_system: String,
    /// Configuration item.
    pub ci_id: i64,
    /// Subcategory.
    pub subcategory: String,
}

impl NewIncident {
    /// The fields that find its duplicates; `None` when any is unset (a null never matches).
    pub fn duplicate_signature(&self) -> Option<DuplicateSignature> {
        Some(DuplicateSignature {
            customer_id: self.customer_id?,
            source_system: self.source_system.clone()?,
            ci_id: self.ci_id?,
            subcategory: self.subcategory.clone()?,
        })
    }
}

/// Decides a new incident (SPEC §4, §4.1): its organisation, reporter, channel, classification,
/// level and deadline. Field errors come in the order of the request's checks: who may report
/// for whom, the level, the classification, then what had to be looked up.
pub fn new_incident(
    caller: &Caller,
    draft: IncidentDraft,
    lookups: &CreationLookups<'_>,
) -> Result<NewIncident, TransitionError> {
    let customer_id = customer_of_new(caller, draft.customer_id)?;
    let created_by = caller.id.ok_or_else(|| {
        TransitionError::Forbidden("Incidents are reported by users and integrations.".into())
    })?;
    let is_customer = caller.roles.has(Role::Customer);
    if is_customer && draft.level.is_some() {
        return Err(invalid(
            "level",
            "forbidden",
            "the service desk sets the level",
        ));
    }
    let reporter = match draft.reporter {
        Some(reporter) => Some(reporter),
        None if is_customer => Some(Reporter {
            name: caller.name.clone(),
            phone: None,
            email: None,
        }),
        None => None,
    };
    let channel = draft.channel.unwrap_or(if is_customer {
        Channel::Web
    } else if caller.roles.has(Role::Integration) && !caller.roles.is_staff() {
        Channel::Monitoring
    } else {
        Channel::Phone
    });
    let user_reported = is_user_reported(is_customer, channel, reporter.is_some());
    if user_reported && reporter.is_none() {
        return Err(invalid(
            "reporter",
            "required",
            format!(
                "an incident reported by {channel} names its reporter (at least a name); only monitoring and other incidents may have none"
            ),
        ));
    }
    let taxonomy = lookups.taxonomy;
    let subcategory = draft.subcategory;
    let category = draft
        .category
        .or_else(|| subcategory.as_deref().and_then(|s| taxonomy.category_of(s)));
    if category.is_none() && subcategory.is_some() {
        return Err(invalid(
            "subcategory",
            "unknown",
            "not a subcategory; see GET /api/v1/taxonomy",
        ));
    }
    taxonomy
        .check_classification(category.as_deref(), subcategory.as_deref())
        .map_err(|e| TransitionError::Invalid(vec![e]))?;
    match lookups.customer.filter(|c| c.id == customer_id) {
        None => {
            return Err(invalid(
                "customer_id",
                "not_found",
                format!("customer {customer_id} does not exist"),
            ));
        }
        Some(customer) if !customer.active => {
            return Err(invalid(
                "customer_id",
                "inactive",
                "the customer organisation is no longer served",
            ));
        }
        Some(_) => {}
    }
    if let Some(ci_id) = draft.ci_id {
        check_ci(ci_id, lookups.ci, Some(customer_id), caller)?;
    }
    if let Some(previous) = draft.recurrence_of {
        let found = lookups
            .recurrence
            .filter(|p| p.id == previous && p.customer_id == Some(customer_id));
        match found {
            Some(p) if p.status == Status::Closed => {}
            Some(_) => {
                return Err(invalid(
                    "recurrence_of",
                    "not_closed",
                    "a recurrence refers to a closed incident; the open one can still be worked",
                ));
            }
            None => {
                return Err(invalid(
                    "recurrence_of",
                    "not_found",
                    format!("incident {previous} does not exist"),
                ));
            }
        }
    }
    let subcategory_default = match (&category, &subcategory) {
        (Some(c), Some(s)) => taxonomy.subcategory(c, s).map(|s| s.default_level),
        _ => None,
    };
    let affects_data_upload = draft.affects_data_upload.unwrap_or(false);
    let affects_onsite_work = draft.affects_onsite_work.unwrap_or(false);
    let level = sla::initial_level(
        draft.level,
        subcategory_default,
        affects_data_upload,
        affects_onsite_work,
    );
    let now = lookups.now;
    Ok(NewIncident {
        kind: draft.kind.unwrap_or(IncidentKind::Fault),
        channel,
        title: draft.title.trim().to_owned(),
        description: draft.description.unwrap_or_default(),
        customer_id: Some(customer_id),
        reporter,
        user_reported,
        source_system: draft.source_system.map(|s| s.trim().to_owned()),
        ci_id: draft.ci_id,
        category,
        subcategory,
        level,
        affects_onsite_work,
        affects_data_upload,
        status: Status::New,
        tier: Tier::L1,
        due_at: sla::initial_due_at(
            now,
            level,
            &lookups.deadlines,
            affects_data_upload,
            lookups.upload_cutoff,
        ),
        recurrence_of: draft.recurrence_of,
        dedup_key: None,
        last_occurrence_at: None,
        created_by,
        created_at: now,
        links: vec![],
    })
}

/// Whether a new incident is user-reported (SPEC §4): a customer user reported it, it came in
/// through a human channel, or staff named a reporter for a monitoring or other incident.
fn is_user_reported(by_customer: bool, channel: Channel, has_reporter: bool) -> bool {
    let human = matches!(
        channel,
        Channel::Phone | Channel::Web | Channel::Email | Channel::Onsite
    );
    by_customer || human || has_reporter
}

/// The `created` history entry and events of a newly stored incident.
pub fn created(incident: &Incident) -> (HistoryEntry, Vec<IncidentEvent>) {
    (
        HistoryEntry {
            action: "created",
            changes: diff(None, incident),
            comment: None,
            internal: false,
        },
        vec![IncidentEvent::Created],
    )
}
