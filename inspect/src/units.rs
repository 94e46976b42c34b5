//! Human renderings of durations, sizes, times and raw bytes.

const NS_PER_US: u64 = 1_000;
const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_MIN: u64 = 60 * NS_PER_S;

/// `850ns`, `12.3µs`, `1.2ms`, `3.25s`, `2m05s`.
pub fn format_duration_ns(ns: u64) -> String {
    if ns < NS_PER_US {
        format!("{ns}ns")
    } else if ns < NS_PER_MS {
        format!("{:.1}µs", ns as f64 / NS_PER_US as f64)
    } else if ns < NS_PER_S {
        format!("{:.1}ms", ns as f64 / NS_PER_MS as f64)
    } else if ns < NS_PER_MIN {
        format!("{:.2}s", ns as f64 / NS_PER_S as f64)
    } else {
        let minutes = ns / NS_PER_MIN;
        let seconds = (ns % NS_PER_MIN) / NS_PER_S;
        format!("{minutes}m{seconds:02}s")
    }
}

/// `512 B`, `12.3 KiB`, `4.0 MiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `2024-05-01 12:00:00.123 UTC` for nanoseconds since the Unix epoch.
pub fn format_unix_time_ns(ns: u64) -> String {
    let seconds = ns / NS_PER_S;
    let millis = (ns % NS_PER_S) / NS_PER_MS;
    let days = seconds / 86_400;
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_date_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        second_of_day / 3600,
        (second_of_day % 3600) / 60,
        second_of_day % 60
    )
}

/// Proleptic Gregorian (year, month, day) of a count of days since
/// 1970-01-01 (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_date_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Bytes as a C-style quoted string, cut after `limit` bytes with `...`.
pub fn quote_bytes(bytes: &[u8], limit: usize) -> String {
    let mut quoted = String::with_capacity(bytes.len().min(limit) + 2);
    quoted.push('"');
    for &byte in bytes.iter().take(limit) {
        push_escaped(&mut quoted, byte);
    }
    quoted.push('"');
    if bytes.len() > limit {
        quoted.push_str("...");
    }
    quoted
}

fn push_escaped(out: &mut String, byte: u8) {
    match byte {
        b'"' => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        b'\n' => out.push_str("\\n"),
        b'\t' => out.push_str("\\t"),
        b'\r' => out.push_str("\\r"),
        0x20..=0x7e => out.push(char::from(byte)),
        _ => out.push_str(&format!("\\x{byte:02x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(format_duration_ns(0), "0ns");
        assert_eq!(format_duration_ns(850), "850ns");
        assert_eq!(format_duration_ns(12_345), "12.3µs");
        assert_eq!(format_duration_ns(1_200_000), "1.2ms");
        assert_eq!(format_duration_ns(3_250_000_000), "3.25s");
        assert_eq!(format_duration_ns(125 * NS_PER_S), "2m05s");
        assert_eq!(format_duration_ns(u64::MAX), "307445734m33s");
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(12_595), "12.3 KiB");
        assert_eq!(format_bytes(4 << 20), "4.0 MiB");
        assert!(format_bytes(u64::MAX).ends_with("PiB"));
    }

    #[test]
    fn unix_times_become_utc_dates() {
        assert_eq!(format_unix_time_ns(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(
            format_unix_time_ns(1_709_210_096_789_000_000),
            "2024-02-29 12:34:56.789 UTC"
        );
        assert!(format_unix_time_ns(u64::MAX).starts_with("2554-"));
    }

    #[test]
    fn bytes_are_quoted_and_cut() {
        assert_eq!(quote_bytes(b"hi\n\"\\\x01", 10), r#""hi\n\"\\\x01""#);
        assert_eq!(quote_bytes(b"abcdef", 3), r#""abc"..."#);
    }
}
