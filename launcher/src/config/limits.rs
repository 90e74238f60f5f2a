//! Resource limits of an agent (`max_memory`, `max_cpu`, `limit_for`, `on_limit`) and the value
//! types they are written in: sizes ("500MiB") and percentages of one core ("150%"). Parsed
//! during deserialization, so a wrong unit is an error located at the value.

use super::values::Dur;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A size in bytes, written with a unit: "500MiB", "2GiB", "1.5G", "4096B".
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Bytes(pub u64);

/// Units a size accepts; decimal (kB, MB) and binary (KiB, MiB) as written.
const BYTE_UNITS: &[(&str, f64)] = &[
    ("B", 1.0),
    ("kB", 1e3),
    ("KB", 1e3),
    ("K", 1024.0),
    ("KiB", 1024.0),
    ("MB", 1e6),
    ("M", 1048576.0),
    ("MiB", 1048576.0),
    ("GB", 1e9),
    ("G", 1073741824.0),
    ("GiB", 1073741824.0),
    ("TB", 1e12),
    ("T", 1099511627776.0),
    ("TiB", 1099511627776.0),
];

/// Splits "1.5 GiB" into 1.5 and "GiB".
fn number_and_unit(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let n: f64 = s[..end].parse().ok().filter(|n: &f64| n.is_finite())?;
    Some((n, s[end..].trim()))
}

impl FromStr for Bytes {
    type Err = String;
    fn from_str(s: &str) -> Result<Bytes, String> {
        let bad = || {
            format!(
                "invalid size {s:?}; write a number with a unit, such as \"500MiB\", \"2GiB\" or \"800MB\""
            )
        };
        let (n, unit) = number_and_unit(s).ok_or_else(bad)?;
        let (_, factor) = BYTE_UNITS.iter().find(|(u, _)| *u == unit).ok_or_else(bad)?;
        let bytes = n * factor;
        if bytes < 1.0 || bytes > u64::MAX as f64 / 2.0 {
            return Err(format!("size {s:?} out of range; it must be at least 1B"));
        }
        Ok(Bytes(bytes as u64))
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: f64 = 1048576.0;
        const GIB: f64 = 1073741824.0;
        let b = self.0 as f64;
        let (n, unit) = if b >= GIB {
            (b / GIB, "GiB")
        } else if b >= MIB {
            (b / MIB, "MiB")
        } else {
            return write!(f, "{}B", self.0);
        };
        let n = format!("{n:.1}");
        write!(f, "{}{unit}", n.strip_suffix(".0").unwrap_or(&n))
    }
}

/// CPU as a percentage of one core, written with `%`: "150%" is one and a half cores.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl FromStr for Percent {
    type Err = String;
    fn from_str(s: &str) -> Result<Percent, String> {
        let bad = || {
            format!("invalid CPU share {s:?}; write a percentage of one core, such as \"50%\" or \"150%\"")
        };
        let (n, unit) = number_and_unit(s).ok_or_else(bad)?;
        if unit != "%" {
            return Err(bad());
        }
        if n <= 0.0 {
            return Err(format!("CPU share {s:?} must be more than 0%"));
        }
        Ok(Percent(n))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
string_serde!(Bytes);
string_serde!(Percent);

/// What the launcher does when an agent stays over a limit for `limit_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnLimit {
    /// Stop it and let the restart policy restart it, as a crash (pm2's `max_memory_restart`).
    #[default]
    Restart,
    /// Stop it and keep it stopped, as `ctl stop` does.
    Stop,
    /// Only mark it unhealthy, with the event.
    Mark,
}

/// An agent's resource limits, as the state machine checks them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceLimits {
    pub max_memory: Option<Bytes>,
    pub max_cpu: Option<Percent>,
    pub limit_for: Dur,
    pub on_limit: OnLimit,
}

impl ResourceLimits {
    pub fn any(&self) -> bool {
        self.max_memory.is_some() || self.max_cpu.is_some()
    }

    /// The first limit a reading is over, in words ("memory 612.0MiB over max_memory 500MiB").
    pub fn exceeded(&self, cpu_percent: Option<f64>, memory_bytes: u64) -> Option<String> {
        if let Some(max) = self.max_memory
            && memory_bytes > max.0
        {
            return Some(format!("memory {} over max_memory {max}", Bytes(memory_bytes)));
        }
        if let (Some(max), Some(cpu)) = (self.max_cpu, cpu_percent)
            && cpu > max.0
        {
            return Some(format!("CPU {cpu:.0}% over max_cpu {max}"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_percentages_need_their_units() {
        assert_eq!("500MiB".parse::<Bytes>().unwrap(), Bytes(500 << 20));
        assert_eq!("1.5 GiB".parse::<Bytes>().unwrap(), Bytes(3 << 29));
        assert_eq!("800MB".parse::<Bytes>().unwrap(), Bytes(800_000_000));
        assert_eq!("4096B".parse::<Bytes>().unwrap(), Bytes(4096));
        for bad in ["500", "500%", "5m", "MiB", "-1MiB", "0B", ""] {
            assert!(bad.parse::<Bytes>().is_err(), "{bad}");
        }
        assert_eq!("150%".parse::<Percent>().unwrap(), Percent(150.0));
        for bad in ["150", "1.5", "0%", "50MiB"] {
            assert!(bad.parse::<Percent>().is_err(), "{bad}");
        }
        assert_eq!(Bytes(500 << 20).to_string(), "500MiB");
        assert_eq!(Bytes(3 << 29).to_string(), "1.5GiB");
    }

    #[test]
    fn names_the_first_limit_exceeded() {
        let l = ResourceLimits {
            max_memory: Some(Bytes(100 << 20)),
            max_cpu: Some(Percent(50.0)),
            limit_for: Dur::secs(0),
            on_limit: OnLimit::Restart,
        };
        assert_eq!(l.exceeded(Some(10.0), 50 << 20), None);
        assert_eq!(l.exceeded(None, 200 << 20).unwrap(), "memory 200MiB over max_memory 100MiB");
        assert_eq!(l.exceeded(Some(80.0), 1).unwrap(), "CPU 80% over max_cpu 50%");
    }
}
