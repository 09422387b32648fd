//! New incidents: decided by `workflow::new_incident`, stored with their `created` history entry
//! and `incident.created` event in one statement.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;

use crate::domain::incident::Incident;
use crate::domain::notification;
use crate::domain::role::Role;
use crate::domain::sla::Deadlines;
use crate::domain::workflow::{
    self, Caller, CreationLookups, CustomerFacts, IncidentCommand, IncidentDraft, NewIncident,
    OnDuplicate,
};
use crate::store::StoreError;
use crate::store::combined_statements::Combined;
use crate::store::incidents::{IncidentRow, NewIncidentRow};
use crate::store::schema::incidents;
use crate::store::{calendar, notifications, outbox};

use crate::domain::search::IncidentText;
use crate::store::incident_text::NewDocument;

use super::journal::{event_data, history_insert, outbox_event};
use super::{Reported, WriteSettings, ci_ref, customer_active, execute};

/// Creates an incident with its `created` history entry and `incident.created` event, in one
/// statement; or, when it duplicates an unresolved incident (SPEC §8), refuses it or records it
/// there, as `on_duplicate` says.
pub fn create(
    conn: &mut PgConnection,
    caller: &Caller,
    draft: IncidentDraft,
    on_duplicate: Option<OnDuplicate>,
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<Reported, StoreError> {
    // Who may report for which organisation is settled before anything is read.
    let customer_id = workflow::customer_of_new(caller, draft.customer_id)?;
    // No transaction around the reads: under READ COMMITTED it would hold no locks on what they
    // read, so it would add two round trips and no guarantee. The writes are one statement, or
    // `execute`'s own transaction.
    let (customer, deadlines) = customer_and_deadlines(conn, customer_id, settings.timezone)?;
    let ci = draft
        .ci_id
        .map(|id| ci_ref(conn, id))
        .transpose()?
        .flatten();
    let recurrence = draft
        .recurrence_of
        .map(|id| crate::store::incidents::find_ref(conn, id))
        .transpose()?
        .flatten();
    let lookups = CreationLookups {
        now,
        taxonomy: &settings.taxonomy,
        customer,
        ci,
        recurrence,
        deadlines,
        upload_cutoff: settings.cutoff(),
    };
    let new = workflow::new_incident(caller, draft, &lookups)?;
    let duplicate_of = match new.duplicate_signature() {
        Some(signature) if on_duplicate != Some(OnDuplicate::Create) => {
            crate::store::incidents::find_unresolved_duplicate(conn, &signature)?
        }
        _ => None,
    };
    match (duplicate_of, on_duplicate) {
        (None, _) => {
            insert(conn, new, caller.roles.has(Role::Customer), now).map(Reported::Created)
        }
        (Some(original), Some(OnDuplicate::Append)) => {
            let command = IncidentCommand::ReportAgain {
                title: new.title,
                description: Some(new.description),
            };
            execute(conn, original, None, caller, command, settings, now).map(|applied| {
                Reported::Appended {
                    incident: applied.incident,
                    open_customer_issue: applied.open_customer_issue,
                }
            })
        }
        (Some(original), _) => Err(StoreError::DuplicateIncident {
            duplicate_of: original,
        }),
    }
}

diesel::define_sql_function! {
    /// Draws the next value of a sequence.
    fn nextval(sequence: diesel::sql_types::Text) -> diesel::sql_types::BigInt;
}

/// Stores a decided new incident with its `created` history entry, `incident.created` event and,
/// when it can reach anyone (`reported_by_customer_user`, or the reporter's address), the
/// `created` message for its reporter, in one statement: the id is drawn first, so the entry
/// and the event, which name the incident, are known before anything is written.
pub(in crate::store) fn insert(
    conn: &mut PgConnection,
    new: NewIncident,
    reported_by_customer_user: bool,
    now: DateTime<Utc>,
) -> Result<Incident, StoreError> {
    let id: i64 = diesel::select(nextval("incidents_id_seq")).get_result(conn)?;
    let author = new.created_by;
    let row = NewIncidentRow::try_from(new.clone())?;
    let incident = new.into_incident(id, Incident::number_for(id));
    let (entry, events) = workflow::created(&incident);
    let mut statement = Combined::new(
        diesel::insert_into(incidents::table)
            .values((incidents::id.eq(id), row))
            .returning(IncidentRow::as_returning()),
    )
    .with("history", history_insert(id, Some(author), now, entry)?)
    .with(
        "document",
        NewDocument::new(id, IncidentText::of(&incident).document([])),
    );
    for (n, event) in events.into_iter().enumerate() {
        let data = event_data(&incident, None, now)?;
        let tells_reporter = notification::kind_of_event(event).filter(|_| {
            let email = incident.reporter.as_ref().and_then(|r| r.email.as_deref());
            notification::may_reach(email, reported_by_customer_user)
        });
        let event = outbox_event(event, &incident, Some(author));
        statement = outbox::with_event(statement, &format!("event_{n}"), event, now, data);
        if let Some(kind) = tells_reporter {
            statement = statement.with(
                format!("notification_{n}"),
                notifications::Queue::new(&incident, kind, None, now),
            );
        }
    }
    let stored = Incident::try_from(statement.get_result::<IncidentRow>(conn)?)?;
    if stored != incident {
        // The entry and the event describe `incident`; a column the database fills differently
        // would make them disagree with the row.
        log::error!("incident {id} was stored as {stored:?}, its journal says {incident:?}");
    }
    Ok(stored)
}

/// [`customer_facts`] and the deadlines in force, in one statement: a create reads nothing
/// else before it decides, unless it names a configuration item or a recurrence.
fn customer_and_deadlines(
    conn: &mut PgConnection,
    id: i64,
    timezone: Tz,
) -> Result<(Option<CustomerFacts>, Deadlines), StoreError> {
    let (active, deadlines): (Option<bool>, calendar::DeadlineFacts) =
        diesel::select((customer_active(id), calendar::deadline_facts())).get_result(conn)?;
    Ok((
        active.map(|active| CustomerFacts { id, active }),
        calendar::deadlines_from(deadlines, timezone)?,
    ))
}
