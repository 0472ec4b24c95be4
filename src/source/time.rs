//! Timestamps as the platforms write them (pure).
//!
//! LiveSwitch writes ISO-8601 / RFC 3339 times with 0 to 7 fraction digits and `Z` or an
//! offset (`2021-07-29T18:26:54.47798Z`, `2021-07-29T11:27:04.240603-07:00`). mosaic keeps
//! whole milliseconds since the Unix epoch, rounded to the nearest.

use chrono::DateTime;

/// Unix milliseconds of an RFC 3339 time, or why it is not one.
pub fn parse_iso_ms(text: &str) -> Result<i64, String> {
    let t = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| format!("{text:?} is not an ISO-8601 time ({e})"))?;
    let ns = i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos());
    i64::try_from((ns + 500_000).div_euclid(1_000_000))
        .map_err(|_| format!("{text:?} is out of range"))
}

/// Seconds (a JSON number, as LiveSwitch's `videoDelay`) to whole milliseconds.
pub fn seconds_to_ms(seconds: f64) -> Option<i64> {
    let ms = (seconds * 1000.0).round();
    (ms.is_finite() && ms.abs() < 1e12).then_some(ms as i64)
}

/// The compact UTC form used in output names: `20220228T015118Z` (`.123` kept when the
/// time has milliseconds, so two sessions a second apart differ).
pub fn compact_utc(unix_ms: i64) -> String {
    match DateTime::from_timestamp_millis(unix_ms) {
        Some(t) if unix_ms.rem_euclid(1000) == 0 => t.format("%Y%m%dT%H%M%SZ").to_string(),
        Some(t) => t.format("%Y%m%dT%H%M%S%.3fZ").to_string(),
        None => unix_ms.to_string(),
    }
}

/// Unix milliseconds of a Matroska `DateUTC` (nanoseconds since 2001-01-01T00:00:00 UTC).
pub fn matroska_date_to_unix_ms(date_utc_ns: i64) -> i64 {
    const MATROSKA_EPOCH_MS: i64 = 978_307_200_000;
    MATROSKA_EPOCH_MS + date_utc_ns.div_euclid(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_of_zero_to_seven_digits_and_offsets() {
        let base = 1_627_583_214_000; // 2021-07-29T18:26:54Z
        assert_eq!(parse_iso_ms("2021-07-29T18:26:54Z"), Ok(base));
        assert_eq!(parse_iso_ms("2021-07-29T18:26:54.4Z"), Ok(base + 400));
        assert_eq!(parse_iso_ms("2021-07-29T18:26:54.47798Z"), Ok(base + 478));
        assert_eq!(parse_iso_ms("2021-07-29T18:26:54.4779849Z"), Ok(base + 478));
        assert_eq!(
            parse_iso_ms("2021-07-29T11:26:54.346-07:00"),
            Ok(base + 346)
        );
        assert_eq!(parse_iso_ms("2021-07-29T18:26:54.0004999+00:00"), Ok(base));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2021-07-29",
            "2021-13-29T18:26:54Z",
            "1627583214",
        ] {
            assert!(parse_iso_ms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seconds_and_names() {
        assert_eq!(seconds_to_ms(0.091534), Some(92));
        assert_eq!(seconds_to_ms(-0.1878241888671875), Some(-188));
        assert_eq!(seconds_to_ms(f64::NAN), None);
        assert_eq!(compact_utc(1_646_013_078_000), "20220228T015118Z");
        assert_eq!(compact_utc(1_646_013_078_830), "20220228T015118.830Z");
        assert_eq!(matroska_date_to_unix_ms(0), 978_307_200_000);
    }
}
