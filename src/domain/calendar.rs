//! Business calendar: working hours per weekday and holidays, in the service's time zone.
//! When enabled, resolution deadlines count working time only.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Working hours of one weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    /// Opening time.
    pub start: NaiveTime,
    /// Closing time, after `start`.
    pub end: NaiveTime,
}

/// Working hours per weekday and holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessCalendar {
    /// Hours by weekday, Monday first; `None` for a day off.
    pub hours: [Option<WorkingHours>; 7],
    /// Days off whatever the weekday.
    pub holidays: BTreeSet<NaiveDate>,
    /// Time zone of the hours and dates.
    pub timezone: Tz,
}

impl BusinessCalendar {
    fn instant(&self, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        let naive = date.and_time(time);
        self.timezone
            .from_local_datetime(&naive)
            .earliest()
            // A time inside a daylight-saving gap: the first instant after it.
            .or_else(|| {
                self.timezone
                    .from_local_datetime(&(naive + Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
    }

    /// True when some weekday has working hours.
    pub fn has_working_time(&self) -> bool {
        self.hours.iter().any(Option::is_some)
    }

    /// The instant `amount` of working time after `from`.
    pub fn add_working_time(&self, from: DateTime<Utc>, amount: Duration) -> DateTime<Utc> {
        if !self.has_working_time() {
            return from + amount;
        }
        let mut remaining = amount;
        let mut date = from.with_timezone(&self.timezone).date_naive();
        // Ten years of days bounds the walk even for a calendar made almost only of holidays.
        for _ in 0..3660 {
            let hours = self.hours[date.weekday().num_days_from_monday() as usize];
            if let (Some(hours), false) = (hours, self.holidays.contains(&date))
                && let (Some(open), Some(close)) = (
                    self.instant(date, hours.start),
                    self.instant(date, hours.end),
                )
            {
                let begin = open.max(from);
                if begin < close {
                    let available = close - begin;
                    if remaining <= available {
                        return begin + remaining;
                    }
                    remaining -= available;
                }
            }
            date = match date.succ_opt() {
                Some(next) => next,
                None => break,
            };
        }
        from + amount
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// Monday to Friday 09:00–18:00 in Shanghai.
    fn office(holidays: &[&str]) -> BusinessCalendar {
        let day = Some(WorkingHours {
            start: hm(9, 0),
            end: hm(18, 0),
        });
        BusinessCalendar {
            hours: [day, day, day, day, day, None, None],
            holidays: holidays.iter().map(|d| d.parse().unwrap()).collect(),
            timezone: chrono_tz::Asia::Shanghai,
        }
    }

    /// Local Shanghai time as UTC.
    fn local(s: &str) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .from_local_datetime(&s.parse().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn within_a_working_day() {
        // Monday 2025-01-06 10:00 + 2 h = 12:00.
        let due = office(&[]).add_working_time(local("2025-01-06T10:00:00"), Duration::hours(2));
        assert_eq!(due, local("2025-01-06T12:00:00"));
    }

    #[test]
    fn across_the_evening_into_the_next_morning() {
        // Monday 17:00 + 4 h: 1 h on Monday, 3 h on Tuesday → Tuesday 12:00.
        let due = office(&[]).add_working_time(local("2025-01-06T17:00:00"), Duration::hours(4));
        assert_eq!(due, local("2025-01-07T12:00:00"));
    }

    #[test]
    fn around_midnight_the_clock_waits_for_opening() {
        // Reported Monday 23:30: counting starts Tuesday 09:00.
        let due = office(&[]).add_working_time(local("2025-01-06T23:30:00"), Duration::hours(2));
        assert_eq!(due, local("2025-01-07T11:00:00"));
        let due = office(&[]).add_working_time(local("2025-01-07T00:10:00"), Duration::minutes(30));
        assert_eq!(due, local("2025-01-07T09:30:00"));
    }

    #[test]
    fn weekends_do_not_count() {
        // Friday 2025-01-10 16:00 + 4 h: 2 h Friday, 2 h Monday → Monday 11:00.
        let due = office(&[]).add_working_time(local("2025-01-10T16:00:00"), Duration::hours(4));
        assert_eq!(due, local("2025-01-13T11:00:00"));
        // Reported on Saturday.
        let due = office(&[]).add_working_time(local("2025-01-11T10:00:00"), Duration::hours(1));
        assert_eq!(due, local("2025-01-13T10:00:00"));
    }

    #[test]
    fn holidays_do_not_count() {
        let calendar = office(&["2025-01-07", "2025-01-08"]);
        // Monday 17:00 + 2 h: 1 h Monday, Tuesday and Wednesday off, 1 h Thursday.
        let due = calendar.add_working_time(local("2025-01-06T17:00:00"), Duration::hours(2));
        assert_eq!(due, local("2025-01-09T10:00:00"));
    }

    #[test]
    fn a_deadline_spanning_several_days() {
        // 20 working hours from Wednesday 09:00: Wed 9 h, Thu 9 h, Fri 2 h → Friday 11:00.
        let due = office(&[]).add_working_time(local("2025-01-08T09:00:00"), Duration::hours(20));
        assert_eq!(due, local("2025-01-10T11:00:00"));
    }

    #[test]
    fn a_calendar_without_working_hours_falls_back_to_wall_clock() {
        let calendar = BusinessCalendar {
            hours: [None; 7],
            holidays: BTreeSet::new(),
            timezone: chrono_tz::Asia::Shanghai,
        };
        let from = local("2025-01-06T10:00:00");
        assert_eq!(
            calendar.add_working_time(from, Duration::hours(3)),
            from + Duration::hours(3)
        );
    }
}
