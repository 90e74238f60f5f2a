//! The report: one section per benchmark, a summary table of every figure, and the machine
//! and load it was measured under, rendered as Markdown.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    /// A figure with no target: context for the others.
    Info,
    /// Not measured in this run; the section's notes say why.
    Skipped,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "**missed**",
            Verdict::Info => "",
            Verdict::Skipped => "skipped",
        }
    }

    /// `Met` when `ok`, else `Missed`; `Info` when the value could not be computed.
    pub fn check(value: f64, ok: bool) -> Verdict {
        match (value.is_nan(), ok) {
            (true, _) => Verdict::Info,
            (false, true) => Verdict::Met,
            (false, false) => Verdict::Missed,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub value: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Figure {
    pub fn info(name: impl Into<String>, value: impl Into<String>) -> Figure {
        Figure { name: name.into(), value: value.into(), target: String::new(), verdict: Verdict::Info }
    }

    pub fn target(
        name: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        verdict: Verdict,
    ) -> Figure {
        Figure { name: name.into(), value: value.into(), target: target.into(), verdict }
    }
}

/// One benchmark's results.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub title: String,
    pub figures: Vec<Figure>,
    /// How it was measured and what the figures mean.
    pub method: Vec<String>,
    /// Raw per-run numbers and observations, as Markdown.
    pub details: Vec<String>,
}

impl Section {
    pub fn new(title: impl Into<String>) -> Section {
        Section { title: title.into(), ..Section::default() }
    }

    /// A section for a benchmark that could not run, saying why.
    pub fn skipped(title: impl Into<String>, why: impl Into<String>) -> Section {
        let mut s = Section::new(title);
        let why = why.into();
        s.figures.push(Figure::target("(not measured)", "", "", Verdict::Skipped));
        s.details.push(format!("Skipped: {why}"));
        s
    }
}

/// What the report says about where and how it was made.
pub struct Header {
    pub command: String,
    /// The source measured: a commit, and whether the work tree had changes.
    pub source: String,
    /// Hand-written analysis of the misses (profiles, causes, proposed fixes), appended as is.
    pub analysis: Option<String>,
    pub date: String,
    pub quick: bool,
    pub machine: Vec<String>,
    pub load_before: String,
    pub load_after: String,
    pub duration_s: f64,
}

pub fn render(h: &Header, sections: &[Section]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Agentvisor benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `cargo run --release -p agentvisor-bench -- all` (about 12 minutes on this machine; it builds the \
         launcher and dashboard in release mode first, installs supervisord from PyPI into a \
         temporary virtualenv, and rewrites this file). `-- all --only ingest,disk` runs some of the \
         benchmarks (ingest, interference, disk, frame, scale, restart, peer, exporter, probes, alerts, schedule); `-- all --quick` runs \
         tiny sizes into a temporary file, as the crate's test does. The code is in `bench/src/`, one \
         module per benchmark; the analysis at the end is `bench/analysis.md`.\n"
    );
    if h.quick {
        let _ = writeln!(
            out,
            "**Quick mode: tiny sizes that only check the harness works; these figures mean nothing.**\n"
        );
    }
    let _ = writeln!(out, "- Command: `{}`", h.command);
    let _ = writeln!(out, "- Date: {}", h.date);
    let _ = writeln!(out, "- Source: {}", h.source);
    for m in &h.machine {
        let _ = writeln!(out, "- {m}");
    }
    let _ = writeln!(out, "- Load average (1, 5, 15 min) before: {}; after: {}", h.load_before, h.load_after);
    let _ = writeln!(out, "- Whole run: {:.0} s", h.duration_s);
    let _ = writeln!(
        out,
        "\nThe machine is shared (other engineers compile and test on it) and has 2 cores. Every figure is \
         a median or percentile over repeated runs, and every comparison is a ratio of two things \
         measured side by side, alternating, in this same run. Nothing here is a test: no time is \
         asserted anywhere.\n"
    );
    let _ = writeln!(out, "## Results\n");
    let _ = writeln!(out, "| Benchmark | Figure | Value | Target | Verdict |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    for s in sections {
        for f in &s.figures {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                s.title,
                f.name,
                f.value,
                f.target,
                f.verdict.label()
            );
        }
    }
    for s in sections {
        let _ = writeln!(out, "\n## {}\n", s.title);
        for m in &s.method {
            let _ = writeln!(out, "{m}\n");
        }
        for d in &s.details {
            let _ = writeln!(out, "{d}\n");
        }
    }
    if let Some(a) = &h.analysis {
        let _ = writeln!(out, "\n{}", a.trim_end());
    }
    out
}

/// The machine, as far as /proc tells: CPU model, cores, memory, kernel.
pub fn machine() -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_gib = procfs::Current::current()
        .map(|m: procfs::Meminfo| m.mem_total as f64 / (1u64 << 30) as f64)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    vec![
        format!("Machine: {cores} cores ({model}), {mem_gib:.0} GiB memory, Linux {}", kernel.trim()),
        format!(
            "Build: {} profile, {} {}",
            if cfg!(debug_assertions) { "debug" } else { "release" },
            std::env::consts::OS,
            std::env::consts::ARCH
        ),
    ]
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Formatting helpers shared by the sections.
pub fn ms(d: f64) -> String {
    if d.is_nan() {
        "n/a".into()
    } else if d < 1.0 {
        format!("{:.0} µs", d * 1000.0)
    } else if d < 100.0 {
        format!("{d:.1} ms")
    } else {
        format!("{d:.0} ms")
    }
}

pub fn mib(bytes: f64) -> String {
    if bytes.is_nan() { "n/a".into() } else { format!("{:.1} MiB", bytes / (1u64 << 20) as f64) }
}

pub fn mb(bytes: f64) -> String {
    if bytes.is_nan() { "n/a".into() } else { format!("{:.1} MB", bytes / 1e6) }
}

pub fn ratio(r: f64) -> String {
    if r.is_nan() {
        "n/a".into()
    } else if r < 0.1 {
        // A restart in milliseconds against one in seconds: two decimals would say 0.00.
        format!("{r:.4}")
    } else {
        format!("{r:.2}")
    }
}

pub fn rate(per_s: f64) -> String {
    if per_s >= 1e6 { format!("{:.2} M/s", per_s / 1e6) } else { format!("{:.0} k/s", per_s / 1e3) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_summary_rows() {
        let mut s = Section::new("1. Ingest");
        s.figures.push(Figure::target("ratio", "0.70", ">= 0.6", Verdict::Met));
        let h = Header {
            command: "x".into(),
            source: "abc".into(),
            analysis: Some("## Analysis\n\ntext".into()),
            date: "d".into(),
            quick: true,
            machine: machine(),
            load_before: loadavg(),
            load_after: loadavg(),
            duration_s: 1.0,
        };
        let md = render(&h, &[s]);
        assert!(md.contains("| 1. Ingest | ratio | 0.70 | >= 0.6 | met |"));
        assert!(md.contains("Quick mode"));
        assert!(md.trim_end().ends_with("## Analysis\n\ntext"));
    }
}
