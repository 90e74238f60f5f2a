//! Short human forms of durations, sizes and numbers, shared by the screens and the one-shot
//! commands so a figure reads the same everywhere.

pub use agentvisor_shared::status_table::duration_ms;

/// Bytes in binary units with one decimal: `512 B`, `40.0 MiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n.max(0.0);
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// `used` in the unit of `total`, then `total`: `3.1/7.8 GiB`.
pub fn bytes_of(used: f64, total: f64) -> String {
    let t = bytes(total);
    let unit = t.split_once(' ').map_or("B", |(_, u)| u);
    let scale = match unit {
        "KiB" => 1024f64,
        "MiB" => 1024f64.powi(2),
        "GiB" => 1024f64.powi(3),
        "TiB" => 1024f64.powi(4),
        _ => 1.0,
    };
    format!("{:.1}/{t}", used / scale)
}

/// Bytes in at most six characters for table columns: `512B`, `40.0M`, `1.2G`.
pub fn bytes_short(n: f64) -> String {
    let b = bytes(n);
    match b.split_once(' ') {
        Some((v, unit)) => format!("{v}{}", &unit[..1]),
        None => b,
    }
}

/// A count with k/M suffixes so token totals fit a table column: `950`, `12.3k`, `4.1M`.
pub fn count(n: i64) -> String {
    let v = n as f64;
    match n.unsigned_abs() {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", v / 1e3),
        _ => format!("{:.1}M", v / 1e6),
    }
}

/// A metric value: integers without decimals, others with up to two.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.2}") }
}

/// The zone the terminal UI shows times in: the machine's local zone by default (`TZ`
/// honoured), UTC with `--utc`; a fixed offset in tests, so snapshots do not depend on the
/// machine's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Utc,
    Local,
    /// For tests: a zone that is not the machine's, whatever the machine's is.
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed(chrono::FixedOffset),
}

impl Zone {
    fn offset(self, ms: i64) -> chrono::FixedOffset {
        use chrono::{Offset, TimeZone};
        match self {
            Zone::Utc => chrono::Utc.fix(),
            Zone::Fixed(o) => o,
            Zone::Local => chrono::Local
                .timestamp_millis_opt(ms)
                .single()
                .map_or(chrono::Utc.fix(), |t| t.offset().fix()),
        }
    }

    fn at(self, ms: i64) -> chrono::DateTime<chrono::FixedOffset> {
        let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        utc.with_timezone(&self.offset(ms))
    }

    /// How the zone is named on screen: `UTC`, or the offset (`UTC+01:00`) with the name
    /// `TZ` gives, when it gives one (`Europe/Berlin UTC+01:00`).
    pub fn label(self, now_ms: i64) -> String {
        let offset = self.offset(now_ms);
        let name = match self {
            Zone::Local => std::env::var("TZ").ok().map(|tz| tz.trim_start_matches(':').to_owned()),
            _ => None,
        }
        .filter(|n| !n.is_empty() && !n.starts_with('/') && n != "UTC");
        let offset = if offset.local_minus_utc() == 0 { "UTC".to_owned() } else { format!("UTC{offset}") };
        match name {
            Some(n) => format!("{n} {offset}"),
            None => offset,
        }
    }

    /// A time in a list: the time of day for today (`14:03:07`), the date and minute for an
    /// older day of this year (`Nov 17 14:03`), the date alone before (`2025-11-17`). Events
    /// are kept for weeks, so a bare time of day would mislead. Always 8 or 12 characters.
    pub fn time(self, ms: i64, now_ms: i64) -> String {
        use chrono::Datelike;
        let t = self.at(ms);
        let now = self.at(now_ms);
        if t.date_naive() == now.date_naive() {
            t.format("%H:%M:%S").to_string()
        } else if t.year() == now.year() {
            t.format("%b %d %H:%M").to_string()
        } else {
            t.format("%Y-%m-%d").to_string()
        }
    }

    /// When the day of `now_ms` began in this zone (its midnight, or the first instant after
    /// it where a change of offset skipped midnight).
    pub fn day_start_ms(self, now_ms: i64) -> i64 {
        let now = self.at(now_ms);
        let since_midnight = now.time().signed_duration_since(chrono::NaiveTime::MIN).num_milliseconds();
        let start = now_ms - since_midnight;
        // A change of offset during the day moves midnight by the difference.
        let shift = i64::from(self.offset(now_ms).local_minus_utc() - self.offset(start).local_minus_utc());
        start - shift * 1_000
    }

    /// A full timestamp with seconds and zone, for a detail view: `2026-11-18 14:03:07 UTC+01:00`.
    pub fn full(self, ms: i64) -> String {
        format!("{} {}", self.at(ms).format("%Y-%m-%d %H:%M:%S"), self.label(ms))
    }
}

/// Values drawn as one line of block characters, scaled from zero to `scale` (the screen
/// passes one scale for every row, so rows compare, and a floor, so that a blip among zeros
/// is not a full bar), the newest on the right, padded on the left to `width`.
pub fn spark(values: &[f64], width: usize, scale: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(width)..];
    let mut out = " ".repeat(width - tail.len());
    for v in tail {
        let level = if scale > 0.0 { ((v.max(0.0) / scale) * 7.0).round() as usize } else { 0 };
        out.push(BARS[level.min(7)]);
    }
    out
}

/// `v` with at most `places` decimals and no trailing zeros: `3.1`, `216`, `0.25`.
pub fn decimals(v: f64, places: usize) -> String {
    let s = format!("{v:.places$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

/// Columns `c` takes in a terminal.
pub fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    ratatui::text::Span::raw(&*c.encode_utf8(&mut buf)).width()
}

/// Columns `s` takes in a terminal.
pub fn width(s: &str) -> usize {
    ratatui::text::Span::raw(s).width()
}

/// `s` cut to `max` columns with `…` where it was cut, at a word boundary when one is in the
/// second half (so a word is not cut in the middle when a whole one can go).
pub fn ellipsize(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    let cut_mid_word =
        !out.ends_with(char::is_whitespace) && s[out.len()..].starts_with(|c: char| !c.is_whitespace());
    if cut_mid_word
        && let Some(space) = out.rfind(char::is_whitespace)
        && width(&out[..space]) >= max / 2
    {
        out.truncate(space);
    }
    let end = out.trim_end().len();
    out.truncate(end);
    out.push('…');
    out
}

/// `s` wrapped into lines of at most `max` columns at spaces; a word longer than a line is
/// broken.
pub fn wrap(s: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    for paragraph in s.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let sep = usize::from(!line.is_empty());
            if width(&line) + sep + width(word) <= max {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(word);
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let mut rest = word;
            while width(rest) > max {
                let mut used = 0;
                let cut = rest
                    .char_indices()
                    .find(|(_, c)| {
                        used += char_width(*c);
                        used > max
                    })
                    .map_or(rest.len(), |(i, _)| i);
                lines.push(rest[..cut].to_owned());
                rest = &rest[cut..];
            }
            line.push_str(rest);
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_counts() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(4_200), "4.2s");
        assert_eq!(duration_ms(192_000), "3m12s");
        assert_eq!(duration_ms(5 * 3_600_000 + 180_000), "5h03m");
        assert_eq!(duration_ms(2 * 86_400_000 + 4 * 3_600_000), "2d04h");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(41_943_040.0), "40.0 MiB");
        assert_eq!(bytes_short(41_943_040.0), "40.0M");
        assert_eq!(bytes_short(100.0), "100B");
        assert_eq!(bytes_of(3.1 * 1_073_741_824.0, 7.8 * 1_073_741_824.0), "3.1/7.8 GiB");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.126), "0.13");
        assert_eq!(
            (decimals(3.1, 2), decimals(216.0, 2), decimals(0.254, 2)),
            ("3.1".into(), "216".into(), "0.25".into())
        );
    }

    #[test]
    fn times_in_a_zone_with_dates_for_older_days() {
        // 2026-11-18T11:06:40Z.
        let now = 1_795_000_000_000;
        let cet = Zone::Fixed(chrono::FixedOffset::east_opt(3_600).unwrap());
        assert_eq!(Zone::Utc.time(now - 1_000, now), "11:06:39");
        assert_eq!(cet.time(now - 1_000, now), "12:06:39");
        assert_eq!(cet.time(now - 86_400_000, now), "Nov 17 12:06");
        assert_eq!(cet.time(now - 400 * 86_400_000, now), "2025-10-14");
        // Just after midnight in CET is already another day there, not in UTC.
        let late = now + 12 * 3_600_000;
        assert_eq!(Zone::Utc.time(now, late), "11:06:40");
        assert_eq!(cet.time(now, late), "Nov 18 12:06");
        assert_eq!(cet.label(now), "UTC+01:00");
        assert_eq!(Zone::Utc.label(now), "UTC");
        assert_eq!(cet.full(now), "2026-11-18 12:06:40 UTC+01:00");
        // 11:06:40 UTC is 12:06:40 in CET: its day began at 23:00 UTC the day before.
        assert_eq!(Zone::Utc.day_start_ms(now), now - (11 * 3_600 + 6 * 60 + 40) * 1_000);
        assert_eq!(cet.day_start_ms(now), now - (12 * 3_600 + 6 * 60 + 40) * 1_000);
        assert_eq!(
            cet.day_start_ms(cet.day_start_ms(now)),
            cet.day_start_ms(now),
            "midnight is its own day's"
        );
    }

    #[test]
    fn sparkline_bars() {
        assert_eq!(spark(&[0.0, 1.0, 2.0], 5, 2.0), "  ▁▅█");
        assert_eq!(spark(&[], 3, 1.0), "   ");
        assert_eq!(spark(&[5.0; 10], 4, 5.0), "████");
        // A 1 % blip on a scale of 10 % is a low bar, not a full one.
        assert_eq!(spark(&[0.0, 0.0, 1.0, 0.0], 4, 10.0), "▁▁▂▁");
    }

    #[test]
    fn ellipsis_at_word_boundaries_and_wrapping() {
        assert_eq!(ellipsize("short", 10), "short");
        assert_eq!(ellipsize("waiting for upstream", 14), "waiting for…");
        assert_eq!(ellipsize("researching quantum", 14), "researching…");
        assert_eq!(ellipsize("abcdefghijkl", 6), "abcde…");
        assert_eq!(ellipsize("x", 0), "");
        assert_eq!(ellipsize("ab cdefghijkl", 6), "ab cd…", "no boundary in the second half");
        assert_eq!(wrap("the quick brown fox", 9), ["the quick", "brown fox"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\nb", 4), ["a", "b"]);
    }
}
