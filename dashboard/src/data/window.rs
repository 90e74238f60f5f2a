//! The time windows the detail screen charts.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Window {
    #[default]
    M5,
    H1,
    H6,
    H24,
    D7,
}

impl Window {
    pub const ALL: [Window; 5] = [Window::M5, Window::H1, Window::H6, Window::H24, Window::D7];

    pub fn label(self) -> &'static str {
        match self {
            Window::M5 => "5m",
            Window::H1 => "1h",
            Window::H6 => "6h",
            Window::H24 => "24h",
            Window::D7 => "7d",
        }
    }

    pub fn span_ms(self) -> i64 {
        const MIN: i64 = 60_000;
        match self {
            Window::M5 => 5 * MIN,
            Window::H1 => 60 * MIN,
            Window::H6 => 6 * 60 * MIN,
            Window::H24 => 24 * 60 * MIN,
            Window::D7 => 7 * 24 * 60 * MIN,
        }
    }

    /// How often a chart of this window is worth re-reading: a new point appears once per
    /// step, and long windows aggregate many samples, so they are not re-read on every commit.
    pub fn chart_refresh(self) -> Duration {
        let step_ms = self.span_ms() / CHART_POINTS;
        Duration::from_millis(step_ms.clamp(1_000, 60_000) as u64)
    }

    pub fn next(self) -> Window {
        Self::ALL[(self.index() + 1) % Self::ALL.len()]
    }

    pub fn prev(self) -> Window {
        Self::ALL[(self.index() + Self::ALL.len() - 1) % Self::ALL.len()]
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|w| *w == self).unwrap_or(0)
    }
}

/// Points per chart: about one per terminal column of a wide chart.
pub const CHART_POINTS: i64 = 120;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_and_refreshes() {
        assert_eq!(Window::D7.next(), Window::M5);
        assert_eq!(Window::M5.prev(), Window::D7);
        assert_eq!(Window::M5.chart_refresh(), Duration::from_millis(2_500));
        assert_eq!(Window::D7.chart_refresh(), Duration::from_secs(60));
    }
}
