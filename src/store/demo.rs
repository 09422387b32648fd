//! Writing demo data (`incident-desk seed-demo`): the organisations and people once, then whole
//! batches of generated incidents with their history, notes, escalations and follow-ups by
//! `COPY`, one transaction per batch.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::StoreError;
use super::incidents::IncidentRow;
use super::knowledge::EntryRow;
use super::schema::{
    configuration_items, customers, escalations, follow_ups, incident_history, incident_notes,
    incidents, knowledge_entries, users,
};
use crate::demo::Lived;
use crate::domain::knowledge::{KnowledgeEntry, KnowledgeText};
use crate::domain::role::Role;

/// A seeded user: id, display name.
pub type SeededUser = (i64, String);

/// A seeded organisation: id, its customer user, its configuration items (id, system).
pub type SeededCustomer = (i64, SeededUser, Vec<(i64, String)>);

/// The people and organisations written for the demo.
#[derive(Debug, Default)]
pub struct Seeded {
    /// Service desk, L2 engineers, operations staff, incident managers, the monitoring
    /// integration, by role.
    pub staff: Vec<(Role, Vec<SeededUser>)>,
    /// The organisations.
    pub customers: Vec<SeededCustomer>,
}

/// How many users of each role the demo has.
const STAFF: &[(Role, &str, &str, usize)] = &[
    (Role::ServiceDesk, "desk", "一线工程师", 8),
    (Role::L2Engineer, "l2", "二线工程师", 12),
    (Role::OpsStaff, "ops", "运维人员", 4),
    (Role::IncidentManager, "manager", "事件经理", 3),
    (Role::Integration, "monitoring", "监控系统", 1),
];

/// Writes `customers` organisations (`names[i]` = (code, name)), each with a customer user and
/// a configuration item per system of `systems`, and the staff, all signing in with
/// `password_hash`. Refused when demo users exist already.
pub fn seed_people(
    conn: &mut PgConnection,
    names: &[(String, String)],
    systems: &[Vec<&str>],
    password_hash: &str,
) -> Result<Seeded, StoreError> {
    conn.transaction(|conn| {
        let existing: i64 = users::table
            .filter(users::username.like("demo.%"))
            .count()
            .get_result(conn)?;
        if existing > 0 {
            return Err(StoreError::Conflict {
                code: "already_exists",
                detail: "This database has demo data already; seed an empty database.".into(),
            });
        }
        let mut seeded = Seeded::default();
        for (role, login, title, count) in STAFF {
            let mut people = Vec::new();
            for n in 1..=*count {
                let display = format!("{title}{n:02}");
                let id: i64 = diesel::insert_into(users::table)
                    .values((
                        users::username.eq(format!("demo.{login}{n:02}")),
                        users::password_hash.eq(password_hash),
                        users::display_name.eq(&display),
                        users::roles.eq(vec![role.as_str().to_owned()]),
                    ))
                    .returning(users::id)
                    .get_result(conn)?;
                people.push((id, display));
            }
            seeded.staff.push((*role, people));
        }
        for ((code, name), systems) in names.iter().zip(systems) {
            let customer: i64 = diesel::insert_into(customers::table)
                .values((customers::code.eq(code), customers::name.eq(name)))
                .returning(customers::id)
                .get_result(conn)?;
            let display = format!("{name}信息科");
            let user: i64 = diesel::insert_into(users::table)
                .values((
                    users::username.eq(format!("demo.{}", code.to_lowercase())),
                    users::password_hash.eq(password_hash),
                    users::display_name.eq(&display),
                    users::roles.eq(vec![Role::Customer.as_str().to_owned()]),
                    users::customer_id.eq(customer),
                ))
                .returning(users::id)
                .get_result(conn)?;
            let cis: Vec<(i64, String)> = diesel::insert_into(configuration_items::table)
                .values(
                    systems
                        .iter()
                        .map(|system| {
                            (
                                configuration_items::name.eq(format!("{code}-{system}")),
                                configuration_items::ci_type.eq("application"),
                                configuration_items::customer_id.eq(customer),
                                configuration_items::system.eq(*system),
                            )
                        })
                        .collect::<Vec<_>>(),
                )
                .returning((configuration_items::id, configuration_items::system))
                .get_results(conn)?;
            seeded.customers.push((customer, (user, display), cis));
        }
        Ok(seeded)
    })
}

/// Reserves `count` consecutive incident ids and returns the first. The demo writes ids itself
/// so that history rows can name their incident within one `COPY`; seed a database nobody else
/// is writing to.
pub fn reserve_incident_ids(conn: &mut PgConnection, count: i64) -> Result<i64, StoreError> {
    reserve_ids(conn, "incidents_id_seq", count)
}

/// Reserves `count` consecutive knowledge entry ids and returns the first.
pub fn reserve_knowledge_ids(conn: &mut PgConnection, count: i64) -> Result<i64, StoreError> {
    reserve_ids(conn, "knowledge_entries_id_seq", count)
}

fn reserve_ids(conn: &mut PgConnection, sequence: &str, count: i64) -> Result<i64, StoreError> {
    #[derive(QueryableByName)]
    struct First {
        #[diesel(sql_type = BigInt)]
        first: i64,
    }
    let row: First = diesel::sql_query(
        "SELECT setval($1::regclass, nextval($1::regclass) + $2 - 1) - $2 + 1 AS first",
    )
    .bind::<Text, _>(sequence)
    .bind::<BigInt, _>(count)
    .get_result(conn)?;
    Ok(row.first)
}

#[derive(Insertable)]
#[diesel(table_name = incident_history, treat_none_as_default_value = false)]
struct HistoryInsert<'a> {
    incident_id: i64,
    actor_id: Option<i64>,
    action: &'a str,
    changes: serde_json::Value,
    comment: Option<&'a str>,
    internal: bool,
    created_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = incident_notes, treat_none_as_default_value = false)]
struct NoteInsert<'a> {
    incident_id: i64,
    author_id: i64,
    visibility: &'a str,
    body: &'a str,
    created_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = escalations, treat_none_as_default_value = false)]
struct EscalationInsert<'a> {
    incident_id: i64,
    kind: &'a str,
    trigger: Option<&'a str>,
    reason: Option<&'a str>,
    from_tier: &'a str,
    to_tier: &'a str,
    from_level: &'a str,
    to_level: &'a str,
    from_assignee_id: Option<i64>,
    to_assignee_id: Option<i64>,
    due_at: Option<DateTime<Utc>>,
    created_by: Option<i64>,
    created_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = follow_ups, treat_none_as_default_value = false)]
struct FollowUpInsert<'a> {
    incident_id: i64,
    channel: &'a str,
    reached: bool,
    satisfaction: Option<i16>,
    comment: &'a str,
    performed_by: i64,
    performed_at: DateTime<Utc>,
    on_time: bool,
    completes: bool,
}

/// Writes a batch of lived incidents, in one transaction.
pub fn write_batch(conn: &mut PgConnection, batch: &[Lived]) -> Result<(), StoreError> {
    let rows = batch
        .iter()
        .map(|lived| IncidentRow::try_from(lived.incident.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let history = batch
        .iter()
        .flat_map(|lived| {
            lived.history.iter().map(|(actor, at, entry)| {
                Ok(HistoryInsert {
                    incident_id: lived.incident.id,
                    actor_id: *actor,
                    action: entry.action,
                    changes: serde_json::to_value(&entry.changes).map_err(StoreError::internal)?,
                    comment: entry.comment.as_deref(),
                    internal: entry.internal,
                    created_at: *at,
                })
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let notes: Vec<NoteInsert> = batch
        .iter()
        .flat_map(|lived| {
            lived.notes.iter().map(|(author, at, note)| NoteInsert {
                incident_id: lived.incident.id,
                author_id: *author,
                visibility: note.visibility.as_str(),
                body: &note.body,
                created_at: *at,
            })
        })
        .collect();
    let escalation_rows: Vec<EscalationInsert> = batch
        .iter()
        .flat_map(|lived| {
            lived.escalations.iter().map(|e| EscalationInsert {
                incident_id: lived.incident.id,
                kind: e.kind.as_str(),
                trigger: e.trigger.map(|t| t.as_str()),
                reason: e.reason.as_deref(),
                from_tier: e.from_tier.as_str(),
                to_tier: e.to_tier.as_str(),
                from_level: e.from_level.as_str(),
                to_level: e.to_level.as_str(),
                from_assignee_id: e.from_assignee_id,
                to_assignee_id: e.to_assignee_id,
                due_at: e.due_at,
                created_by: e.created_by,
                created_at: e.created_at,
            })
        })
        .collect();
    let follow_up_rows: Vec<FollowUpInsert> = batch
        .iter()
        .filter_map(|lived| lived.follow_up.as_ref())
        .map(|f| FollowUpInsert {
            incident_id: f.incident_id,
            channel: f.report.channel.as_str(),
            reached: f.report.reached,
            satisfaction: f.report.satisfaction,
            comment: &f.report.comment,
            performed_by: f.performed_by,
            performed_at: f.performed_at,
            on_time: f.on_time,
            completes: f.completes,
        })
        .collect();
    conn.transaction(|conn| {
        diesel::copy_from(incidents::table)
            .from_insertable(&rows)
            .execute(conn)?;
        diesel::copy_from(incident_history::table)
            .from_insertable(&history)
            .execute(conn)?;
        diesel::copy_from(incident_notes::table)
            .from_insertable(&notes)
            .execute(conn)?;
        diesel::copy_from(escalations::table)
            .from_insertable(&escalation_rows)
            .execute(conn)?;
        diesel::copy_from(follow_ups::table)
            .from_insertable(&follow_up_rows)
            .execute(conn)?;
        Ok(())
    })
}

/// Writes a batch of knowledge entries and their search vectors, in one transaction.
pub fn write_knowledge(
    conn: &mut PgConnection,
    batch: &[KnowledgeEntry],
) -> Result<(), StoreError> {
    let rows: Vec<EntryRow> = batch.iter().cloned().map(EntryRow::from).collect();
    let texts: Vec<(i64, KnowledgeText)> = batch.iter().map(|e| (e.id, e.text())).collect();
    conn.transaction(|conn| {
        diesel::copy_from(knowledge_entries::table)
            .from_insertable(&rows)
            .execute(conn)?;
        super::knowledge::index(conn, &texts)
    })
}

/// Refreshes the planner's statistics after the load.
pub fn analyze(conn: &mut PgConnection) -> Result<(), StoreError> {
    diesel::sql_query("ANALYZE").execute(conn)?;
    Ok(())
}
