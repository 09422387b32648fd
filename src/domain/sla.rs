//! Level and deadline arithmetic (SPEC §4.1, procedure §4.8).

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::calendar::BusinessCalendar;
use super::level::Level;

/// Resolution target of each level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTargets {
    /// Target for `low`.
    pub low: Duration,
    /// Target for `medium`.
    pub medium: Duration,
    /// Target for `high`.
    pub high: Duration,
}

impl SlaTargets {
    /// The procedure's defaults: 8 h, 4 h, 2 h.
    pub fn procedure_defaults() -> Self {
        Self {
            low: Duration::hours(8),
            medium: Duration::hours(4),
            high: Duration::hours(2),
        }
    }

    /// The target of `level`.
    pub fn target(&self, level: Level) -> Duration {
        match level {
            Level::Low => self.low,
            Level::Medium => self.medium,
            Level::High => self.high,
        }
    }
}

/// How deadlines are counted: targets per level, on the wall clock or in working time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlines {
    /// Resolution targets.
    pub targets: SlaTargets,
    /// Working hours and holidays; `None` counts around the clock (the default).
    pub calendar: Option<BusinessCalendar>,
}

impl Deadlines {
    /// Around-the-clock deadlines.
    pub fn wall_clock(targets: SlaTargets) -> Self {
        Self {
            targets,
            calendar: None,
        }
    }

    /// The deadline of `level` counted from `from`.
    pub fn after(&self, from: DateTime<Utc>, level: Level) -> DateTime<Utc> {
        let target = self.targets.target(level);
        match &self.calendar {
            Some(calendar) => calendar.add_working_time(from, target),
            None => from + target,
        }
    }
}

/// The local daily time by which the day's data upload must not be held up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadCutoff {
    /// Local time of day.
    pub time: NaiveTime,
    /// Time zone the time is in.
    pub timezone: Tz,
}

/// Level at creation: the given level, else the subcategory's default, else `low`; then
/// affecting the data upload makes it `high`, and affecting on-site work lifts `low` to
/// `medium` (procedure §4.8.2).
pub fn initial_level(
    given: Option<Level>,
    subcategory_default: Option<Level>,
    affects_data_upload: bool,
    affects_onsite_work: bool,
) -> Level {
    let level = given.or(subcategory_default).unwrap_or(Level::Low);
    level_for_impact(level, affects_data_upload, affects_onsite_work)
}

/// The level an incident at `level` must have when it holds up the data upload (`high`) or
/// on-site work (`low` becomes `medium`), procedure §4.8.2; never lower than `level`.
pub fn level_for_impact(
    level: Level,
    affects_data_upload: bool,
    affects_onsite_work: bool,
) -> Level {
    if affects_data_upload {
        Level::High
    } else if affects_onsite_work && level == Level::Low {
        Level::Medium
    } else {
        level
    }
}

/// The deadline after changing the level from `from` to `to` at `now` (SPEC §4.1): raising
/// never extends it and respects the upload cut-off when the incident holds up the upload;
/// lowering counts again from creation.
#[allow(clippy::too_many_arguments)]
pub fn due_after_level_change(
    due_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    from: Level,
    to: Level,
    now: DateTime<Utc>,
    deadlines: &Deadlines,
    affects_data_upload: bool,
    cutoff: Option<UploadCutoff>,
) -> DateTime<Utc> {
    if to > from {
        let raised = raised_due_at(due_at, now, deadlines, to);
        match cutoff {
            Some(cutoff) if affects_data_upload => raised.min(next_cutoff(now, cutoff)),
            _ => raised,
        }
    } else {
        lowered_due_at(created_at, deadlines, to)
    }
}

/// The first cut-off at or after `at`.
pub fn next_cutoff(at: DateTime<Utc>, cutoff: UploadCutoff) -> DateTime<Utc> {
    let local_date = at.with_timezone(&cutoff.timezone).date_naive();
    let on = |date: chrono::NaiveDate| -> DateTime<Utc> {
        let naive = date.and_time(cutoff.time);
        match cutoff.timezone.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            // The cut-off falls into a daylight-saving gap: the first instant after the gap.
            chrono::LocalResult::None => cutoff
                .timezone
                .from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(at),
        }
    };
    let today = on(local_date);
    if today >= at {
        today
    } else {
        on(local_date.succ_opt().unwrap_or(local_date))
    }
}

/// Deadline at creation: `created_at + target(level)`, capped at the next upload cut-off when
/// the incident affects the data upload and a cut-off is configured.
pub fn initial_due_at(
    created_at: DateTime<Utc>,
    level: Level,
    deadlines: &Deadlines,
    affects_data_upload: bool,
    cutoff: Option<UploadCutoff>,
) -> DateTime<Utc> {
    let due = deadlines.after(created_at, level);
    match cutoff {
        Some(cutoff) if affects_data_upload => due.min(next_cutoff(created_at, cutoff)),
        _ => due,
    }
}

/// Deadline after raising the level to `level` at `now`: never later than before.
pub fn raised_due_at(
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
    deadlines: &Deadlines,
    level: Level,
) -> DateTime<Utc> {
    due_at.min(deadlines.after(now, level))
}

/// Deadline after lowering the level to `level`: counted again from creation.
pub fn lowered_due_at(
    created_at: DateTime<Utc>,
    deadlines: &Deadlines,
    level: Level,
) -> DateTime<Utc> {
    deadlines.after(created_at, level)
}

/// True when the incident missed its deadline: resolved after it, or still unresolved past
/// it. An incident closed without being resolved (duplicate, withdrawn) stops its clock at
/// closure.
pub fn sla_breached(
    due_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match (resolved_at, closed_at) {
        (Some(resolved), _) => resolved > due_at,
        (None, Some(closed)) => closed > due_at,
        (None, None) => now > due_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn shanghai_cutoff(hm: (u32, u32)) -> UploadCutoff {
        UploadCutoff {
            time: NaiveTime::from_hms_opt(hm.0, hm.1, 0).unwrap(),
            timezone: chrono_tz::Asia::Shanghai,
        }
    }

    #[test]
    fn level_comes_from_given_then_subcategory_then_low() {
        assert_eq!(
            initial_level(Some(Level::Medium), Some(Level::High), false, false),
            Level::Medium
        );
        assert_eq!(
            initial_level(None, Some(Level::High), false, false),
            Level::High
        );
        assert_eq!(initial_level(None, None, false, false), Level::Low);
    }

    #[test]
    fn data_upload_makes_it_high_and_onsite_work_lifts_low_to_medium() {
        assert_eq!(
            initial_level(Some(Level::Low), None, true, false),
            Level::High
        );
        assert_eq!(
            initial_level(Some(Level::Low), None, true, true),
            Level::High
        );
        assert_eq!(
            initial_level(Some(Level::Low), None, false, true),
            Level::Medium
        );
        assert_eq!(initial_level(None, None, false, true), Level::Medium);
        assert_eq!(
            initial_level(Some(Level::Medium), None, false, true),
            Level::Medium
        );
        assert_eq!(
            initial_level(Some(Level::High), None, false, true),
            Level::High
        );
    }

    #[test]
    fn due_at_adds_the_target() {
        let t = utc("2025-01-06T02:00:00Z");
        let targets = Deadlines::wall_clock(SlaTargets::procedure_defaults());
        assert_eq!(
            initial_due_at(t, Level::Low, &targets, false, None),
            utc("2025-01-06T10:00:00Z")
        );
        assert_eq!(
            initial_due_at(t, Level::Medium, &targets, false, None),
            utc("2025-01-06T06:00:00Z")
        );
        assert_eq!(
            initial_due_at(t, Level::High, &targets, false, None),
            utc("2025-01-06T04:00:00Z")
        );
    }

    #[test]
    fn the_upload_cutoff_caps_the_deadline_on_the_same_day() {
        // 16:00 in Shanghai (08:00 UTC), cut-off 17:00 local: due 17:00, not 18:00.
        let t = utc("2025-01-06T08:00:00Z");
        let targets = Deadlines::wall_clock(SlaTargets::procedure_defaults());
        let due = initial_due_at(
            t,
            Level::High,
            &targets,
            true,
            Some(shanghai_cutoff((17, 0))),
        );
        assert_eq!(due, utc("2025-01-06T09:00:00Z"));
        // Not affecting the upload: the cut-off does not apply.
        let due = initial_due_at(
            t,
            Level::High,
            &targets,
            false,
            Some(shanghai_cutoff((17, 0))),
        );
        assert_eq!(due, utc("2025-01-06T10:00:00Z"));
    }

    #[test]
    fn after_the_cutoff_the_next_days_cutoff_counts() {
        // 23:30 local on the 6th: the next cut-off is 17:00 on the 7th, later than the target.
        let t = utc("2025-01-06T15:30:00Z");
        assert_eq!(
            next_cutoff(t, shanghai_cutoff((17, 0))),
            utc("2025-01-07T09:00:00Z")
        );
        let targets = Deadlines::wall_clock(SlaTargets::procedure_defaults());
        let due = initial_due_at(
            t,
            Level::High,
            &targets,
            true,
            Some(shanghai_cutoff((17, 0))),
        );
        assert_eq!(due, utc("2025-01-06T17:30:00Z"));
    }

    #[test]
    fn a_cutoff_shortly_after_midnight_caps_an_incident_from_the_evening_before() {
        // Cut-off 00:30 local; incident at 23:50 local on the 6th: due at 00:30 on the 7th.
        let t = utc("2025-01-06T15:50:00Z");
        let due = initial_due_at(
            t,
            Level::High,
            &Deadlines::wall_clock(SlaTargets::procedure_defaults()),
            true,
            Some(shanghai_cutoff((0, 30))),
        );
        assert_eq!(due, utc("2025-01-06T16:30:00Z"));
    }

    #[test]
    fn a_cutoff_exactly_now_counts_as_at_or_after() {
        let t = utc("2025-01-06T09:00:00Z");
        assert_eq!(next_cutoff(t, shanghai_cutoff((17, 0))), t);
    }

    #[test]
    fn cutoffs_follow_daylight_saving_time() {
        let cutoff = UploadCutoff {
            time: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            timezone: chrono_tz::Europe::Berlin,
        };
        // 2025-03-30 02:30 does not exist in Berlin: the first instant after the gap.
        let t = utc("2025-03-29T23:00:00Z");
        assert_eq!(next_cutoff(t, cutoff), utc("2025-03-30T01:30:00Z"));
    }

    #[test]
    fn raising_never_extends_and_lowering_counts_from_creation() {
        let created = utc("2025-01-06T00:00:00Z");
        let due = utc("2025-01-06T08:00:00Z");
        let now = utc("2025-01-06T01:00:00Z");
        let deadlines = Deadlines::wall_clock(SlaTargets::procedure_defaults());
        assert_eq!(
            raised_due_at(due, now, &deadlines, Level::High),
            utc("2025-01-06T03:00:00Z")
        );
        let late = utc("2025-01-06T07:30:00Z");
        assert_eq!(raised_due_at(due, late, &deadlines, Level::High), due);
        assert_eq!(lowered_due_at(created, &deadlines, Level::Low), due);
    }

    #[test]
    fn a_business_calendar_counts_working_time_only() {
        use super::super::calendar::WorkingHours;
        let day = Some(WorkingHours {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
        });
        let deadlines = Deadlines {
            targets: SlaTargets::procedure_defaults(),
            calendar: Some(BusinessCalendar {
                hours: [day, day, day, day, day, None, None],
                holidays: Default::default(),
                timezone: chrono_tz::Asia::Shanghai,
            }),
        };
        // Friday 17:00 local (09:00 UTC), high (2 h): 1 h Friday, 1 h Monday → Monday 10:00 local.
        let due = initial_due_at(
            utc("2025-01-10T09:00:00Z"),
            Level::High,
            &deadlines,
            false,
            None,
        );
        assert_eq!(due, utc("2025-01-13T02:00:00Z"));
    }

    #[test]
    fn breaches_compare_resolution_or_now_with_the_deadline() {
        let due = utc("2025-01-06T08:00:00Z");
        let before = utc("2025-01-06T07:00:00Z");
        let after = utc("2025-01-06T09:00:00Z");
        assert!(!sla_breached(due, Some(before), None, after));
        assert!(sla_breached(due, Some(after), None, after));
        assert!(!sla_breached(due, None, None, before));
        assert!(sla_breached(due, None, None, after));
        assert!(!sla_breached(due, None, Some(before), after));
    }
}
