//! The monthly summaries the measures and the statistics report read (SPEC §9), kept exact:
//! what a closure or a follow-up adds is decided by the domain (`KpiCounts::of_closure`,
//! `report::closure_rows`, `report::resolve_minutes`) and added in the same transaction as the
//! change. A rebuild recomputes all of them with the same functions, so the two ways cannot
//! disagree; it runs when the summaries' time zone is not `TIMEZONE` (and after `seed-demo`).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel::upsert::{excluded, on_constraint};

use super::StoreError;
use super::incidents::IncidentRow;
use super::parse_stored;
use super::schema::{
    duration_buckets, escalations, follow_ups, incidents, kpi_monthly, report_summaries,
    resolve_times, statistics_monthly,
};
use crate::domain::escalation::EscalationKind;
use crate::domain::incident::{Incident, Status};
use crate::domain::kpi::{Granularity, KpiCounts, Period};
use crate::domain::report::{
    StatisticsRow, closure_rows, duration_bucket, first_response_minutes, resolve_minutes,
};

/// The first day of the local month of `at`.
fn month_of(at: DateTime<Utc>, timezone: Tz) -> NaiveDate {
    Period::containing(at, timezone, Granularity::Month).first_day
}

/// The measures' key: month, customer, level, tier, assignee.
type KpiKey = (NaiveDate, Option<i64>, String, String, Option<i64>);
/// The statistics' key: month, dimension, code, subcode (`''` for none).
type StatisticsKey = (NaiveDate, &'static str, String, String);

fn kpi_key(month: NaiveDate, incident: &Incident) -> KpiKey {
    (
        month,
        incident.customer_id,
        incident.level.as_str().to_owned(),
        incident.tier.as_str().to_owned(),
        incident.assignee_id,
    )
}

fn add(into: &mut KpiCounts, more: KpiCounts) {
    into.closed += more.closed;
    into.resolved += more.resolved;
    into.resolved_on_time += more.resolved_on_time;
    into.follow_ups += more.follow_ups;
    into.follow_ups_on_time += more.follow_ups_on_time;
    into.satisfaction_sum += more.satisfaction_sum;
    into.satisfaction_count += more.satisfaction_count;
}

/// Adds `counts` to the measures; rows in key order, so concurrent writers lock them alike.
fn add_kpis(conn: &mut PgConnection, counts: HashMap<KpiKey, KpiCounts>) -> Result<(), StoreError> {
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for chunk in rows.chunks(5_000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|((month, customer_id, level, tier, assignee_id), c)| {
                (
                    kpi_monthly::month.eq(*month),
                    kpi_monthly::customer_id.eq(*customer_id),
                    kpi_monthly::level.eq(level),
                    kpi_monthly::tier.eq(tier),
                    kpi_monthly::assignee_id.eq(*assignee_id),
                    kpi_monthly::closed.eq(c.closed),
                    kpi_monthly::resolved.eq(c.resolved),
                    kpi_monthly::resolved_on_time.eq(c.resolved_on_time),
                    kpi_monthly::follow_ups.eq(c.follow_ups),
                    kpi_monthly::follow_ups_on_time.eq(c.follow_ups_on_time),
                    kpi_monthly::satisfaction_sum.eq(c.satisfaction_sum),
                    kpi_monthly::satisfaction_count.eq(c.satisfaction_count),
                )
            })
            .collect();
        diesel::insert_into(kpi_monthly::table)
            .values(values)
            .on_conflict(on_constraint("kpi_monthly_key"))
            .do_update()
            .set((
                kpi_monthly::closed.eq(kpi_monthly::closed + excluded(kpi_monthly::closed)),
                kpi_monthly::resolved.eq(kpi_monthly::resolved + excluded(kpi_monthly::resolved)),
                kpi_monthly::resolved_on_time
                    .eq(kpi_monthly::resolved_on_time + excluded(kpi_monthly::resolved_on_time)),
                kpi_monthly::follow_ups
                    .eq(kpi_monthly::follow_ups + excluded(kpi_monthly::follow_ups)),
                kpi_monthly::follow_ups_on_time.eq(
                    kpi_monthly::follow_ups_on_time + excluded(kpi_monthly::follow_ups_on_time),
                ),
                kpi_monthly::satisfaction_sum
                    .eq(kpi_monthly::satisfaction_sum + excluded(kpi_monthly::satisfaction_sum)),
                kpi_monthly::satisfaction_count.eq(
                    kpi_monthly::satisfaction_count + excluded(kpi_monthly::satisfaction_count),
                ),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Adds `counts` (count, breached) to the statistics, in key order.
fn add_statistics(
    conn: &mut PgConnection,
    counts: HashMap<StatisticsKey, (i64, i64)>,
) -> Result<(), StoreError> {
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for chunk in rows.chunks(5_000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|((month, dimension, code, subcode), (count, breached))| {
                (
                    statistics_monthly::month.eq(*month),
                    statistics_monthly::dimension.eq(*dimension),
                    statistics_monthly::code.eq(code),
                    statistics_monthly::subcode.eq(subcode),
                    statistics_monthly::count.eq(*count),
                    statistics_monthly::breached.eq(*breached),
                )
            })
            .collect();
        diesel::insert_into(statistics_monthly::table)
            .values(values)
            .on_conflict((
                statistics_monthly::month,
                statistics_monthly::dimension,
                statistics_monthly::code,
                statistics_monthly::subcode,
            ))
            .do_update()
            .set((
                statistics_monthly::count
                    .eq(statistics_monthly::count + excluded(statistics_monthly::count)),
                statistics_monthly::breached
                    .eq(statistics_monthly::breached + excluded(statistics_monthly::breached)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The measure of the report's time to resolve in `resolve_times`.
pub const RESOLVE: &str = "resolve";
/// The measure of the report's time to first response in `resolve_times`.
pub const FIRST_RESPONSE: &str = "first_response";

/// A duration of the report: month, level, measure, minutes.
type Duration = (NaiveDate, &'static str, &'static str, f64);
/// The key of a duration's bucket row: month, measure, level, bucket.
type BucketKey = (NaiveDate, &'static str, &'static str, i32);

/// Adds `times` to `resolve_times` with their buckets, and their counts and sums to
/// `duration_buckets` (rows in key order, so concurrent closures lock them alike).
fn add_resolve_times(conn: &mut PgConnection, times: &[Duration]) -> Result<(), StoreError> {
    let mut buckets: HashMap<BucketKey, (i64, f64)> = HashMap::new();
    for chunk in times.chunks(10_000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(month, level, measure, minutes)| {
                let bucket = duration_bucket(*minutes);
                let entry = buckets
                    .entry((*month, *measure, *level, bucket))
                    .or_default();
                entry.0 += 1;
                entry.1 += minutes;
                (
                    resolve_times::month.eq(*month),
                    resolve_times::level.eq(*level),
                    resolve_times::measure.eq(*measure),
                    resolve_times::minutes.eq(*minutes),
                    resolve_times::bucket.eq(bucket),
                )
            })
            .collect();
        diesel::insert_into(resolve_times::table)
            .values(values)
            .execute(conn)?;
    }
    let mut rows: Vec<_> = buckets.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for chunk in rows.chunks(5_000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|((month, measure, level, bucket), (count, sum))| {
                (
                    duration_buckets::month.eq(*month),
                    duration_buckets::measure.eq(*measure),
                    duration_buckets::level.eq(*level),
                    duration_buckets::bucket.eq(*bucket),
                    duration_buckets::count.eq(*count),
                    duration_buckets::minutes_sum.eq(*sum),
                )
            })
            .collect();
        diesel::insert_into(duration_buckets::table)
            .values(values)
            .on_conflict((
                duration_buckets::month,
                duration_buckets::measure,
                duration_buckets::level,
                duration_buckets::bucket,
            ))
            .do_update()
            .set((
                duration_buckets::count
                    .eq(duration_buckets::count + excluded(duration_buckets::count)),
                duration_buckets::minutes_sum
                    .eq(duration_buckets::minutes_sum + excluded(duration_buckets::minutes_sum)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// What closed incidents add, gathered before writing.
#[derive(Default)]
struct Gathered {
    kpis: HashMap<KpiKey, KpiCounts>,
    statistics: HashMap<StatisticsKey, (i64, i64)>,
    resolve_times: Vec<Duration>,
}

impl Gathered {
    fn closure(&mut self, incident: &Incident, escalated: &Escalated, timezone: Tz) {
        let kinds = escalated.kinds.as_slice();
        let Some(closed_at) = incident.closed_at else {
            return;
        };
        let month = month_of(closed_at, timezone);
        add(
            self.kpis.entry(kpi_key(month, incident)).or_default(),
            KpiCounts::of_closure(incident),
        );
        for StatisticsRow {
            dimension,
            code,
            subcode,
            count,
            breached,
        } in closure_rows(incident, kinds)
        {
            let key = (
                month,
                dimension.as_str(),
                code.unwrap_or_default(),
                subcode.unwrap_or_default(),
            );
            let entry = self.statistics.entry(key).or_default();
            entry.0 += count;
            entry.1 += breached;
        }
        let level = incident.level.as_str();
        if let Some(minutes) = resolve_minutes(incident) {
            self.resolve_times.push((month, level, RESOLVE, minutes));
        }
        if let Some(minutes) = first_response_minutes(incident, escalated.first_by_a_person) {
            self.resolve_times
                .push((month, level, FIRST_RESPONSE, minutes));
        }
    }

    fn follow_up(&mut self, incident: &Incident, done: &PerformedFollowUp, tz: Tz) {
        add(
            self.kpis
                .entry(kpi_key(month_of(done.performed_at, tz), incident))
                .or_default(),
            KpiCounts::of_follow_up(
                done.completes,
                done.on_time,
                done.reached,
                done.satisfaction,
            ),
        );
    }

    fn write(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        add_kpis(conn, self.kpis)?;
        add_statistics(conn, self.statistics)?;
        add_resolve_times(conn, &self.resolve_times)
    }
}

/// The escalations of an incident, as the summaries count them.
#[derive(Debug, Default)]
struct Escalated {
    /// Their kinds.
    kinds: Vec<EscalationKind>,
    /// When a person first escalated it (the SLA watcher's escalations are no response).
    first_by_a_person: Option<DateTime<Utc>>,
}

fn escalations_of(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Escalated>, StoreError> {
    let mut found: HashMap<i64, Escalated> = HashMap::new();
    let rows: Vec<(i64, String, Option<i64>, DateTime<Utc>)> = escalations::table
        .filter(escalations::incident_id.eq_any(ids))
        .select((
            escalations::incident_id,
            escalations::kind,
            escalations::created_by,
            escalations::created_at,
        ))
        .load(conn)?;
    for (id, kind, by, at) in rows {
        let entry = found.entry(id).or_default();
        entry.kinds.push(parse_stored(&kind)?);
        if by.is_some() {
            entry.first_by_a_person = Some(entry.first_by_a_person.map_or(at, |t| t.min(at)));
        }
    }
    Ok(found)
}

/// Adds the closure of `incident` (just closed, in this transaction) to the summaries.
pub fn record_closure(
    conn: &mut PgConnection,
    incident: &Incident,
    timezone: Tz,
) -> Result<(), StoreError> {
    let escalated = escalations_of(conn, &[incident.id])?;
    let mut gathered = Gathered::default();
    gathered.closure(
        incident,
        escalated.get(&incident.id).unwrap_or(&Escalated::default()),
        timezone,
    );
    gathered.write(conn)
}

/// What the measures read of a follow-up.
#[derive(Debug, Clone, Copy, Queryable)]
pub struct PerformedFollowUp {
    /// Its incident.
    pub incident_id: i64,
    /// When.
    pub performed_at: DateTime<Utc>,
    /// By the due time.
    pub on_time: bool,
    /// It completed the incident's follow-up.
    pub completes: bool,
    /// The user was reached.
    pub reached: bool,
    /// What the user gave.
    pub satisfaction: Option<i16>,
}

/// Adds a follow-up of `incident` to the summaries.
pub fn record_follow_up(
    conn: &mut PgConnection,
    incident: &Incident,
    done: &PerformedFollowUp,
    timezone: Tz,
) -> Result<(), StoreError> {
    let mut gathered = Gathered::default();
    gathered.follow_up(incident, done, timezone);
    gathered.write(conn)
}

/// Locks the summaries against concurrent additions until the transaction ends: a closure
/// committed before the lock is read by a rebuild, one after it waits and adds itself after.
fn lock(conn: &mut PgConnection) -> Result<(), StoreError> {
    diesel::sql_query(
        "LOCK TABLE report_summaries, kpi_monthly, statistics_monthly, resolve_times, \
         duration_buckets \
         IN EXCLUSIVE MODE",
    )
    .execute(conn)?;
    Ok(())
}

/// Recomputes every summary from the incidents and follow-ups, in months of `timezone`.
fn rebuild_locked(conn: &mut PgConnection, timezone: Tz) -> Result<(), StoreError> {
    diesel::sql_query("TRUNCATE kpi_monthly, statistics_monthly, resolve_times, duration_buckets")
        .execute(conn)?;
    let mut gathered = Gathered::default();
    let mut after = 0_i64;
    loop {
        let batch: Vec<Incident> = incidents::table
            .filter(incidents::status.eq(Status::Closed.as_str()))
            .filter(incidents::id.gt(after))
            .order(incidents::id.asc())
            .limit(10_000)
            .select(IncidentRow::as_select())
            .load(conn)?
            .into_iter()
            .map(Incident::try_from)
            .collect::<Result<_, _>>()?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        let ids: Vec<i64> = batch.iter().map(|i| i.id).collect();
        let escalated = escalations_of(conn, &ids)?;
        let performed: Vec<PerformedFollowUp> = follow_ups::table
            .filter(follow_ups::incident_id.eq_any(&ids))
            .select((
                follow_ups::incident_id,
                follow_ups::performed_at,
                follow_ups::on_time,
                follow_ups::completes,
                follow_ups::reached,
                follow_ups::satisfaction,
            ))
            .load(conn)?;
        let by_id: HashMap<i64, &Incident> = batch.iter().map(|i| (i.id, i)).collect();
        let none = Escalated::default();
        for incident in &batch {
            let own = escalated.get(&incident.id).unwrap_or(&none);
            gathered.closure(incident, own, timezone);
        }
        for done in performed {
            if let Some(incident) = by_id.get(&done.incident_id) {
                gathered.follow_up(incident, &done, timezone);
            }
        }
    }
    gathered.write(conn)?;
    diesel::insert_into(report_summaries::table)
        .values((
            report_summaries::id.eq(1_i16),
            report_summaries::timezone.eq(timezone.name()),
            report_summaries::built_at.eq(Utc::now()),
        ))
        .on_conflict(report_summaries::id)
        .do_update()
        .set((
            report_summaries::timezone.eq(timezone.name()),
            report_summaries::built_at.eq(Utc::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Recomputes every summary in months of `timezone`.
pub fn rebuild(conn: &mut PgConnection, timezone: Tz) -> Result<(), StoreError> {
    conn.transaction(|conn| {
        lock(conn)?;
        rebuild_locked(conn, timezone)
    })
}

/// Rebuilds the summaries unless they are in months of `timezone` already; true when rebuilt.
pub fn ensure_current(conn: &mut PgConnection, timezone: Tz) -> Result<bool, StoreError> {
    conn.transaction(|conn| {
        lock(conn)?;
        let built_for: Option<String> = report_summaries::table
            .select(report_summaries::timezone)
            .first(conn)
            .optional()?;
        if built_for.as_deref() == Some(timezone.name()) {
            return Ok(false);
        }
        rebuild_locked(conn, timezone)?;
        Ok(true)
    })
}
