//! What each command does to the incident's fields once the state machine has agreed.

use chrono::{DateTime, Utc};

use super::super::escalation::{
    EscalationKind, EscalationRecord, EscalationTrigger, PriorityTrigger, SlaTrigger,
};
use super::super::incident::{ClosureCode, Incident, Tier};
use super::super::level::Level;
use super::super::role::{Role, Roles};
use super::super::sla;
use super::super::state_machine::{
    self, Action, Actor, Command, Escalation, MonitoringEvent, TransitionError,
};
use super::super::validation::FieldError;
use super::{
    Caller, CustomerFacts, Effect, EscalationRequest, IncidentCommand, IncidentEdit, Lookups,
    NewNote, Outcome, Resolution, UserFacts, check_ci, invalid, machine_facts, outcome,
};

/// Fills in the fields `command` sets, once the state machine has agreed.
pub(super) fn apply(
    command: IncidentCommand,
    current: &Incident,
    next: &mut Incident,
    caller: &Caller,
    lookups: &Lookups<'_>,
) -> Result<Effect, TransitionError> {
    let now = lookups.now;
    match command {
        IncidentCommand::Edit(edit) => edit_fields(edit, current, next, caller, lookups),
        IncidentCommand::Accept { assignee_id } => {
            let assignee = match assignee_id {
                Some(id) => {
                    let worker = state_machine::tier_worker(current.tier);
                    check_assignee(id, lookups.user.as_ref(), &[worker, Role::IncidentManager])?;
                    id
                }
                None => caller.id.ok_or_else(|| {
                    invalid("assignee_id", "required", "name the engineer to work it")
                })?,
            };
            next.assignee_id = Some(assignee);
            next.accepted_at = Some(now);
            Ok(Effect::default())
        }
        IncidentCommand::Workaround { description } => {
            next.workaround = Some(description);
            next.workaround_applied = true;
            Ok(Effect::default())
        }
        IncidentCommand::Resolve(resolution) => {
            resolve_fields(resolution, current, next, lookups)?;
            next.resolved_at = Some(now);
            next.user_confirmed_at = None;
            Ok(Effect::default())
        }
        IncidentCommand::Confirm { channel } => {
            next.user_confirmed_at = Some(now);
            Ok(Effect {
                comment: channel.map(|c| format!("confirmed by {c}")),
                ..Effect::default()
            })
        }
        IncidentCommand::RejectResolution { reason, channel } => {
            next.resolved_at = None;
            next.user_confirmed_at = None;
            Ok(Effect {
                comment: Some(match channel {
                    Some(channel) => format!("rejected by {channel}: {reason}"),
                    None => reason,
                }),
                ..Effect::default()
            })
        }
        IncidentCommand::Close {
            closure_code,
            duplicate_of,
            note,
        } => {
            let mut note = note.filter(|n| !n.trim().is_empty());
            match closure_code {
                ClosureCode::Duplicate => {
                    let Some(original) = duplicate_of else {
                        return Err(invalid(
                            "duplicate_of",
                            "required",
                            "a duplicate names the incident it duplicates",
                        ));
                    };
                    let same_customer = lookups.incident.is_some_and(|o| {
                        o.id == original
                            && o.id != current.id
                            && o.customer_id == current.customer_id
                    });
                    if !same_customer {
                        return Err(invalid(
                            "duplicate_of",
                            "invalid",
                            "must be another existing incident of the same customer",
                        ));
                    }
                    next.duplicate_of = Some(original);
                    // The history names the incident that survives (SPEC §4.2).
                    let survivor = format!("duplicate of {}", Incident::number_for(original));
                    note = Some(match note {
                        Some(note) => format!("{survivor}\n\n{note}"),
                        None => survivor,
                    });
                }
                ClosureCode::Withdrawn if note.is_none() => {
                    return Err(invalid(
                        "note",
                        "required",
                        "say why the incident is withdrawn",
                    ));
                }
                _ if duplicate_of.is_some() => {
                    return Err(invalid(
                        "duplicate_of",
                        "invalid",
                        "only a duplicate names another incident",
                    ));
                }
                _ => {}
            }
            next.closure_code = Some(closure_code);
            next.closed_at = Some(now);
            next.closed_by = caller.id;
            // Procedure §4.7: the service desk calls a user who reported back after closing.
            let followed_up = matches!(
                closure_code,
                ClosureCode::Resolved | ClosureCode::Unresolved
            );
            if followed_up && current.user_reported {
                next.follow_up_due_at = Some(now + lookups.follow_up_window);
            }
            Ok(Effect {
                comment: note,
                ..Effect::default()
            })
        }
        IncidentCommand::Withdraw { channel, note } => {
            let note = note.filter(|n| !n.trim().is_empty());
            // The desk records a request it received; the reporter's own users ask directly.
            if caller.confined_to_customer().is_none() {
                let mut errors = Vec::new();
                if channel.is_none() {
                    errors.push(FieldError::new(
                        "channel",
                        "required",
                        "say how the reporter asked (phone, email, ...)",
                    ));
                }
                if note.is_none() {
                    errors.push(FieldError::new(
                        "note",
                        "required",
                        "record what the reporter said",
                    ));
                }
                if !errors.is_empty() {
                    return Err(TransitionError::Invalid(errors));
                }
            }
            next.withdrawal_requested_at = Some(now);
            let comment = match (channel, note) {
                (Some(channel), Some(note)) => Some(format!("requested by {channel}: {note}")),
                (Some(channel), None) => Some(format!("requested by {channel}")),
                (None, note) => note,
            };
            Ok(Effect {
                comment,
                ..Effect::default()
            })
        }
        IncidentCommand::Assign {
            assignee_id,
            reason,
        } => {
            if reason.trim().is_empty() {
                return Err(invalid("reason", "required", "say why it is handed on"));
            }
            // A hand-off goes to the tier's own role; incident managers take incidents with
            // `accept` instead.
            let worker = state_machine::tier_worker(current.tier);
            check_assignee(assignee_id, lookups.user.as_ref(), &[worker])?;
            if current.assignee_id == Some(assignee_id) {
                return Err(invalid(
                    "assignee_id",
                    "unchanged",
                    "the incident is already assigned to this user",
                ));
            }
            next.assignee_id = Some(assignee_id);
            Ok(Effect {
                comment: Some(reason),
                ..Effect::default()
            })
        }
        IncidentCommand::RecordCoordination {
            comment,
            change_ref,
        } => {
            if let Some(change) = change_ref {
                next.change_ref = Some(change);
            }
            Ok(Effect {
                comment: Some(comment),
                ..Effect::default()
            })
        }
        IncidentCommand::AddNote {
            visibility,
            body,
            attachment_ids,
        } => Ok(Effect {
            note: Some(NewNote {
                visibility,
                body,
                attachment_ids,
            }),
            ..Effect::default()
        }),
        IncidentCommand::Escalate(request) => escalate(request, current, next, caller, lookups),
        IncidentCommand::Monitoring(event) => Ok(monitoring_event(event, current, next, now)),
        IncidentCommand::ReportAgain { title, description } => {
            count_occurrence(current, next, now);
            let comment = match description.filter(|d| !d.trim().is_empty()) {
                Some(description) => format!("reported again: {title}\n\n{description}"),
                None => format!("reported again: {title}"),
            };
            Ok(Effect {
                comment: Some(comment),
                ..Effect::default()
            })
        }
        // Handled before the state machine is asked.
        IncidentCommand::SlaEscalation { .. } => Ok(Effect::default()),
    }
}

/// The solution and cause an incident gets when monitoring reports recovery before anybody
/// took it (SPEC §4.2 `auto-resolve`).
const AUTO_RESOLUTION: (&str, &str, &str) = (
    "monitoring reported recovery",
    "unknown",
    "unclear_direct_fix",
);

fn count_occurrence(current: &Incident, next: &mut Incident, now: DateTime<Utc>) {
    next.occurrences = current.occurrences.saturating_add(1);
    next.last_occurrence_at = Some(now);
}

fn monitoring_event(
    event: MonitoringEvent,
    current: &Incident,
    next: &mut Incident,
    now: DateTime<Utc>,
) -> Effect {
    let comment = match event {
        MonitoringEvent::Occurrence => {
            count_occurrence(current, next, now);
            None
        }
        MonitoringEvent::Acknowledge => Some("monitoring acknowledged the alert"),
        MonitoringEvent::AutoResolve => {
            let (solution, cause, subcause) = AUTO_RESOLUTION;
            next.solution = Some(solution.to_owned());
            next.cause = Some(cause.to_owned());
            next.subcause = Some(subcause.to_owned());
            next.resolved_at = Some(now);
            next.user_confirmed_at = None;
            None
        }
        MonitoringEvent::RecoveryReported => {
            Some("monitoring reported recovery; the incident stays in progress")
        }
    };
    Effect {
        comment: comment.map(str::to_owned),
        ..Effect::default()
    }
}

/// Sets the customer of an incident monitoring opened for no known customer (SPEC §4, §8). A
/// customer, once set, stays: the incident is that organisation's record.
fn set_customer(
    customer_id: i64,
    current: &Incident,
    next: &mut Incident,
    found: Option<CustomerFacts>,
) -> Result<(), TransitionError> {
    match current.customer_id {
        Some(existing) if existing == customer_id => return Ok(()),
        Some(_) => {
            return Err(invalid(
                "customer_id",
                "immutable",
                "the customer of an incident does not change once set",
            ));
        }
        None => {}
    }
    match found.filter(|c| c.id == customer_id) {
        None => Err(invalid(
            "customer_id",
            "not_found",
            format!("customer {customer_id} does not exist"),
        )),
        Some(customer) if !customer.active => Err(invalid(
            "customer_id",
            "inactive",
            "the customer organisation is no longer served",
        )),
        Some(_) => {
            next.customer_id = Some(customer_id);
            Ok(())
        }
    }
}

/// The user `id` exists, is active and holds one of `roles` (the roles that may work the
/// incident), else 422 on `assignee_id`.
fn check_assignee(
    id: i64,
    user: Option<&UserFacts>,
    roles: &[Role],
) -> Result<(), TransitionError> {
    let Some(user) = user.filter(|u| u.id == id) else {
        return Err(invalid(
            "assignee_id",
            "not_found",
            format!("user {id} does not exist"),
        ));
    };
    if !user.active || !user.roles.has_any(roles) {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        return Err(invalid(
            "assignee_id",
            "invalid",
            format!("the assignee must be an active {}", names.join(" or ")),
        ));
    }
    Ok(())
}

fn resolve_fields(
    resolution: Resolution,
    current: &Incident,
    next: &mut Incident,
    lookups: &Lookups<'_>,
) -> Result<(), TransitionError> {
    let taxonomy = lookups.taxonomy;
    let one = |error: FieldError| TransitionError::Invalid(vec![error]);
    if let Some(id) = resolution.knowledge_entry_id {
        match lookups.knowledge_entry.filter(|(found, _)| *found == id) {
            Some((_, true)) => next.knowledge_entry_id = Some(id),
            Some((_, false)) => {
                return Err(invalid(
                    "knowledge_entry_id",
                    "invalid",
                    "the knowledge entry is not published",
                ));
            }
            None => {
                return Err(invalid(
                    "knowledge_entry_id",
                    "not_found",
                    format!("knowledge entry {id} does not exist"),
                ));
            }
        }
    }
    taxonomy
        .check_cause(&resolution.cause, &resolution.subcause)
        .map_err(one)?;
    if resolution.category.is_some() || resolution.subcategory.is_some() {
        let category = resolution
            .category
            .or_else(|| current.category.clone())
            .or_else(|| {
                resolution
                    .subcategory
                    .as_deref()
                    .and_then(|s| taxonomy.category_of(s))
            });
        let subcategory = resolution
            .subcategory
            .or_else(|| current.subcategory.clone());
        taxonomy
            .check_classification(category.as_deref(), subcategory.as_deref())
            .map_err(one)?;
        next.category = category;
        next.subcategory = subcategory;
    }
    next.solution = Some(resolution.solution);
    next.cause = Some(resolution.cause);
    next.subcause = Some(resolution.subcause);
    Ok(())
}

fn edit_fields(
    edit: IncidentEdit,
    current: &Incident,
    next: &mut Incident,
    caller: &Caller,
    lookups: &Lookups<'_>,
) -> Result<Effect, TransitionError> {
    let taxonomy = lookups.taxonomy;
    if let Some(title) = edit.title {
        next.title = title.trim().to_owned();
    }
    if let Some(description) = edit.description {
        next.description = description;
    }
    if let Some(reporter) = edit.reporter {
        // Whether the incident is user-reported was decided at creation (SPEC §4); its
        // reporter may be corrected, never removed.
        if reporter.is_none() && current.user_reported {
            return Err(invalid(
                "reporter",
                "required",
                "a user-reported incident keeps its reporter; correct the details instead",
            ));
        }
        next.reporter = reporter;
    }
    if let Some(system) = edit.source_system {
        next.source_system = system.map(|s| s.trim().to_owned());
    }
    if let Some(kind) = edit.kind {
        next.kind = kind;
    }
    if let Some(channel) = edit.channel {
        next.channel = channel;
    }
    if let Some(category) = edit.category {
        if category.is_none() {
            next.subcategory = None;
        }
        next.category = category;
    }
    if let Some(subcategory) = edit.subcategory {
        if next.category.is_none() {
            next.category = subcategory.as_deref().and_then(|s| taxonomy.category_of(s));
        }
        next.subcategory = subcategory;
    }
    taxonomy
        .check_classification(next.category.as_deref(), next.subcategory.as_deref())
        .map_err(|e| TransitionError::Invalid(vec![e]))?;
    if let Some(customer_id) = edit.customer_id {
        set_customer(customer_id, current, next, lookups.customer)?;
    }
    if let Some(ci_id) = edit.ci_id {
        next.ci_id = ci_id;
        if let Some(id) = ci_id.filter(|_| next.ci_id != current.ci_id) {
            check_ci(id, lookups.ci, next.customer_id, caller)?;
        }
    }
    if let Some(onsite) = edit.affects_onsite_work {
        next.affects_onsite_work = onsite;
    }
    if let Some(upload) = edit.affects_data_upload {
        next.affects_data_upload = upload;
    }
    // Procedure §4.8.2: newly holding up the data upload or on-site work raises the level at
    // once, as a priority escalation, by the same rule as at creation.
    let upload_now = next.affects_data_upload && !current.affects_data_upload;
    let onsite_now = next.affects_onsite_work && !current.affects_onsite_work;
    let raised = sla::level_for_impact(current.level, upload_now, onsite_now);
    if raised <= current.level {
        return Ok(Effect::default());
    }
    let (trigger, reason) = if upload_now {
        (
            PriorityTrigger::DataUpload,
            "the incident holds up the data upload",
        )
    } else {
        (
            PriorityTrigger::OnsiteUrgent,
            "the incident holds up on-site work",
        )
    };
    change_level(current, next, raised, lookups)?;
    let escalation = EscalationRecord::between(
        current,
        next,
        EscalationKind::Priority,
        Some(EscalationTrigger::Priority(trigger)),
        reason.to_owned(),
        caller.id,
        lookups.now,
    );
    Ok(Effect {
        escalation: Some(escalation),
        ..Effect::default()
    })
}

/// Moves `next` to `level` with the deadline of SPEC §4.1.
fn change_level(
    current: &Incident,
    next: &mut Incident,
    level: Level,
    lookups: &Lookups<'_>,
) -> Result<(), TransitionError> {
    let Some(deadlines) = &lookups.deadlines else {
        // The store loads deadlines for every command that can change the level.
        return Err(invalid(
            "level",
            "unavailable",
            "the deadlines in force were not looked up",
        ));
    };
    next.due_at = sla::due_after_level_change(
        current.due_at,
        current.created_at,
        current.level,
        level,
        lookups.now,
        deadlines,
        next.affects_data_upload,
        lookups.upload_cutoff,
    );
    next.level = level;
    Ok(())
}

fn escalate(
    request: EscalationRequest,
    current: &Incident,
    next: &mut Incident,
    caller: &Caller,
    lookups: &Lookups<'_>,
) -> Result<Effect, TransitionError> {
    let now = lookups.now;
    let escalation = match request {
        EscalationRequest::Functional {
            assignee_id,
            diagnosis,
        } => {
            let l2 = lookups
                .user
                .as_ref()
                .is_some_and(|u| u.id == assignee_id && u.active && u.roles.has(Role::L2Engineer));
            if !l2 {
                return Err(invalid(
                    "assignee_id",
                    "invalid",
                    "the assignee must be an active l2_engineer",
                ));
            }
            next.tier = Tier::L2;
            next.assignee_id = Some(assignee_id);
            next.accepted_at = current.accepted_at.or(Some(now));
            EscalationRecord::between(
                current,
                next,
                EscalationKind::Functional,
                None,
                diagnosis,
                caller.id,
                now,
            )
        }
        EscalationRequest::Priority {
            level,
            reason,
            trigger,
        } => {
            if level == current.level {
                return Err(invalid(
                    "level",
                    "unchanged",
                    format!("the incident is already {level}"),
                ));
            }
            change_level(current, next, level, lookups)?;
            let trigger = trigger.unwrap_or(PriorityTrigger::Manual);
            EscalationRecord::between(
                current,
                next,
                EscalationKind::Priority,
                Some(EscalationTrigger::Priority(trigger)),
                reason,
                caller.id,
                now,
            )
        }
        EscalationRequest::Hierarchical { reason } => EscalationRecord::between(
            current,
            next,
            EscalationKind::Hierarchical,
            None,
            reason,
            caller.id,
            now,
        ),
    };
    Ok(Effect {
        comment: escalation.reason.clone(),
        escalation: Some(escalation),
        note: None,
    })
}

/// The watcher's decision: a hierarchical escalation when the state machine allows one for the
/// incident managers and the threshold has passed on the current deadline, else nothing.
pub(super) fn sla_escalation(
    current: &Incident,
    trigger: SlaTrigger,
    warning_percent: u32,
    now: DateTime<Utc>,
) -> Outcome {
    let managers = Roles::new([Role::IncidentManager]);
    let actor = Actor {
        roles: &managers,
        customer_id: None,
    };
    let command = Command::Escalate(Escalation::Hierarchical);
    if state_machine::decide(&machine_facts(current, false), &actor, command).is_err() {
        return Outcome::nothing(current);
    }
    let span = current.due_at - current.created_at;
    let warning_at = current.created_at + span * warning_percent as i32 / 100;
    let (passed, reason) = match trigger {
        SlaTrigger::SlaWarning => (
            now >= warning_at,
            format!("{warning_percent}% of the time to the deadline has passed"),
        ),
        SlaTrigger::SlaBreach => (
            now >= current.due_at,
            "the resolution deadline has passed".to_owned(),
        ),
    };
    if !passed {
        return Outcome::nothing(current);
    }
    // The deadline it records is the one it is about: the incident's, unchanged.
    let escalation = EscalationRecord::between(
        current,
        current,
        EscalationKind::Hierarchical,
        Some(EscalationTrigger::Sla(trigger)),
        reason.clone(),
        None,
        now,
    );
    outcome(
        current,
        current.clone(),
        Action::Escalate,
        Effect {
            comment: Some(reason),
            escalation: Some(escalation),
            note: None,
        },
    )
}
