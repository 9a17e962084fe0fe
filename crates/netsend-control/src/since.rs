//! The times `--since` accepts (`netsend inbox --since`, `netsend sent
//! --since`): a UTC date (`2026-12-01`), a UTC date and time (`2026-12-01
//! 10:00`, `2026-12-01 10:00:30`, or with `T`), or a time ago (`90s`,
//! `30m`, `1h`, `2d`, `1w`). Listings print UTC, so dates are UTC too.

/// Why a `--since` time was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is no time: give 2026-12-01, \"2026-12-01 10:00\" (UTC), or a time ago such as 30m, 1h, 2d")]
pub struct SinceError(pub String);

/// The Unix ms `text` names, `now_ms` being now.
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, SinceError> {
    let bad = || SinceError(text.to_owned());
    let t = text.trim();
    if let Some(ago) = ago_ms(t) {
        return Ok(now_ms.saturating_sub(ago));
    }
    let (date, time) = match t.split_once([' ', 'T']) {
        Some((d, tm)) => (d, Some(tm.trim())),
        None => (t, None),
    };
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(d))) = (ymd.next(), ymd.next(), ymd.next()) else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(time) = time {
        let parts: Vec<Option<i64>> = time.split(':').map(|p| p.parse().ok()).collect();
        let limits = [24, 60, 60];
        if parts.len() < 2 || parts.len() > 3 {
            return Err(bad());
        }
        for (i, part) in parts.iter().enumerate() {
            match part {
                Some(v) if (0..limits[i]).contains(v) => {
                    secs += v * [3600, 60, 1][i];
                }
                _ => return Err(bad()),
            }
        }
    }
    Ok(secs * 1000)
}

/// `90s`, `30m`, `1h`, `2d`, `1w` in ms.
fn ago_ms(t: &str) -> Option<i64> {
    let unit = t.chars().last()?;
    let factor: i64 = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        'w' => 7 * 86_400_000,
        _ => return None,
    };
    let n: i64 = t[..t.len() - 1].parse().ok().filter(|n| *n >= 0)?;
    n.checked_mul(factor)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_180_000_000;

    #[test]
    fn dates_times_and_times_ago() {
        assert_eq!(parse_since("1970-01-01", NOW), Ok(0));
        assert_eq!(parse_since("2026-12-01", NOW), Ok(1_796_083_200_000));
        assert_eq!(
            parse_since("2026-12-01 10:00", NOW),
            Ok(1_796_083_200_000 + 36_000_000)
        );
        assert_eq!(
            parse_since("2026-12-01T10:00:30", NOW),
            Ok(1_796_083_200_000 + 36_030_000)
        );
        assert_eq!(parse_since("2000-02-29", NOW), Ok(951_782_400_000));
        assert_eq!(parse_since("30m", NOW), Ok(NOW - 1_800_000));
        assert_eq!(parse_since("1h", NOW), Ok(NOW - 3_600_000));
        assert_eq!(parse_since("2d", NOW), Ok(NOW - 172_800_000));
        assert_eq!(parse_since(" 90s ", NOW), Ok(NOW - 90_000));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-12-01 25:00",
            "2026-12",
            "-1h",
            "h",
            "1x",
            "2026-12-01 10",
            "99999999999999999999d",
        ] {
            assert!(parse_since(bad, NOW).is_err(), "{bad}");
        }
    }
}
