//! Timestamps in answers, written exactly as chrono's own `Serialize` writes them (RFC 3339 in
//! UTC with `Z`, and as many fractional digits as the value needs) but handed to the serializer in
//! one piece.
//!
//! chrono's implementation formats through `collect_str`, so serde_json escapes the text a
//! character at a time: on a page of 50 incidents that was 36 % of the server's instructions
//! (`bench/callgrind.sh`, BENCHMARKS.md). Use with `#[serde(serialize_with = "...")]` on the
//! answers that lists send many of.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `at` as answers write it.
pub fn format(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Serializes `at` as chrono does, in one string.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(at))
}

/// [`serialize`] for an optional timestamp; `None` is `null`.
pub fn serialize_option<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize(at, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};
    use proptest::prelude::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "super::serialize")]
        at: DateTime<Utc>,
        #[serde(serialize_with = "super::serialize_option")]
        maybe: Option<DateTime<Utc>>,
    }

    #[derive(Serialize)]
    struct Chronos {
        at: DateTime<Utc>,
        maybe: Option<DateTime<Utc>>,
    }

    fn both(at: DateTime<Utc>, maybe: Option<DateTime<Utc>>) -> (String, String) {
        (
            serde_json::to_string(&Ours { at, maybe }).unwrap(),
            serde_json::to_string(&Chronos { at, maybe }).unwrap(),
        )
    }

    #[test]
    fn whole_seconds_milliseconds_and_microseconds_read_as_chrono_writes_them() {
        let second = Utc.with_ymd_and_hms(2026, 11, 30, 13, 8, 54).unwrap();
        for nanos in [0, 289_000_000, 289_609_000, 5_000] {
            let at = second + chrono::Duration::nanoseconds(nanos);
            let (ours, chronos) = both(at, None);
            assert_eq!(ours, chronos);
        }
        let (ours, _) = both(second, Some(second + chrono::Duration::microseconds(1)));
        assert_eq!(
            ours,
            r#"{"at":"2026-11-30T13:08:54Z","maybe":"2026-11-30T13:08:54.000001Z"}"#
        );
    }

    proptest! {
        #[test]
        fn any_stored_timestamp_reads_as_chrono_writes_it(
            micros in -62_135_596_800_000_000_i64..253_402_300_799_999_999,
            present: bool,
        ) {
            let at = DateTime::from_timestamp_micros(micros).unwrap();
            let (ours, chronos) = both(at, present.then_some(at));
            prop_assert_eq!(ours, chronos);
        }
    }
}
