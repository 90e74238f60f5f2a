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

/// The time of day (UTC) of a timestamp, for "since" and event columns: `10:00:00Z`.
pub fn clock(ms: i64) -> String {
    let t = agentvisor_shared::time::rfc3339(ms);
    // rfc3339 is `YYYY-MM-DDTHH:MM:SSZ`; the time of day is what an operator scans for.
    t.get(11..20).map(str::to_owned).unwrap_or(t)
}

/// Values drawn as one line of block characters, scaled from zero to the largest value, the
/// newest on the right, padded on the left to `width`.
pub fn spark(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(width)..];
    let max = tail.iter().copied().fold(0.0_f64, f64::max);
    let mut out = " ".repeat(width - tail.len());
    for v in tail {
        let level = if max > 0.0 { ((v.max(0.0) / max) * 7.0).round() as usize } else { 0 };
        out.push(BARS[level.min(7)]);
    }
    out
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
        assert_eq!(clock(1_795_000_000_000), "11:06:40Z");
    }

    #[test]
    fn sparkline_bars() {
        assert_eq!(spark(&[0.0, 1.0, 2.0], 5), "  ▁▅█");
        assert_eq!(spark(&[], 3), "   ");
        assert_eq!(spark(&[5.0; 10], 4), "████");
    }
}
