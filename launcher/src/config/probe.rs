//! Readiness and liveness probes (`readiness = { http = "...", period = "1s" }`) and
//! `ready_log_line`: how the launcher checks an agent that cannot speak the protocol. The
//! options and their defaults are Kubernetes'.

use super::values::{Dur, MAX_AGENT_DURATION};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One probe: exactly one of `exec`, `http`, `tcp`, and its options.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// A command and its arguments; exit code 0 is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    /// A plain-HTTP URL to GET; a 2xx or 3xx status is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// `host:port` to connect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// For `http`: the body (its first [`MAX_BODY`] bytes) must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// Before the first check: from the start (readiness) or from ready (liveness).
    #[serde(default = "defaults::initial_delay")]
    pub initial_delay: Dur,
    #[serde(default = "defaults::period")]
    pub period: Dur,
    /// One check longer than this is a failure (an exec probe's process group is killed).
    #[serde(default = "defaults::timeout")]
    pub timeout: Dur,
    /// Consecutive successes that make a failing (or new) probe pass.
    #[serde(default = "defaults::threshold_one")]
    pub success_threshold: u32,
    /// Consecutive failures that make a probe fail.
    #[serde(default = "defaults::failure_threshold")]
    pub failure_threshold: u32,
}

/// The most of an HTTP probe's body that is read: a URL that returns gigabytes costs no more.
pub const MAX_BODY: usize = 64 * 1024;
/// The shortest `period`: a thousand agents probing faster would be the launcher's main work.
pub const MIN_PERIOD: Duration = Duration::from_millis(100);
/// The largest threshold: far beyond any use, small enough for messages and counters.
pub const MAX_THRESHOLD: u32 = 1_000;
/// The longest `ready_log_line` pattern, and the compiled size a pattern may take.
pub const MAX_PATTERN: usize = 1_024;
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

mod defaults {
    use super::Dur;
    use std::time::Duration;
    pub fn initial_delay() -> Dur {
        Dur(Duration::ZERO)
    }
    pub fn period() -> Dur {
        Dur::secs(10)
    }
    pub fn timeout() -> Dur {
        Dur::secs(1)
    }
    pub fn threshold_one() -> u32 {
        1
    }
    pub fn failure_threshold() -> u32 {
        3
    }
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Exec(Vec<String>),
    Http { authority: String, path: String, url: String },
    Tcp { host: String, port: u16 },
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Exec(_) => "exec",
            Target::Http { .. } => "http",
            Target::Tcp { .. } => "tcp",
        }
    }

    /// How the target is shown: the command line, the URL or `host:port`.
    pub fn describe(&self) -> String {
        match self {
            Target::Exec(argv) => argv.join(" "),
            Target::Http { url, .. } => url.clone(),
            Target::Tcp { host, port } => format!("{host}:{port}"),
        }
    }
}

impl ProbeConfig {
    /// The target, checked: the key that is wrong and why otherwise.
    pub fn target(&self) -> Result<Target, (&'static str, String)> {
        match (&self.exec, &self.http, &self.tcp) {
            (Some(argv), None, None) => {
                if argv.first().is_none_or(|p| p.trim().is_empty()) {
                    return Err(("exec", "must name a program: exec = [\"program\", \"arg\", ...]".into()));
                }
                if argv.iter().any(|a| a.contains('\0')) {
                    return Err(("exec", "arguments cannot contain NUL bytes".into()));
                }
                Ok(Target::Exec(argv.clone()))
            }
            (None, Some(url), None) => http_target(url).map_err(|m| ("http", m)),
            (None, None, Some(addr)) => tcp_target(addr).map_err(|m| ("tcp", m)),
            (None, None, None) => {
                Err(("", "needs one of exec = [...], http = \"URL\" or tcp = \"host:port\"".into()))
            }
            _ => Err(("", "takes exactly one of exec, http and tcp".into())),
        }
    }
}

fn http_target(url: &str) -> Result<Target, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "{url:?}: https is not supported, probes speak plain HTTP; probe the local http port, or use an exec probe such as exec = [\"curl\", \"-fsS\", \"{url}\"]"
            ));
        }
        _ => return Err(format!("invalid URL {url:?}: write it as \"http://host:port/path\"")),
    }
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Err(format!("invalid URL {url:?}: it names no host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!("invalid URL {url:?}: user names and passwords are not supported"));
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok(Target::Http { authority: authority.as_str().to_owned(), path, url: url.to_owned() })
}

fn tcp_target(addr: &str) -> Result<Target, String> {
    let bad = || format!("invalid address {addr:?}: write it as \"host:port\", such as \"127.0.0.1:5432\"");
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(Target::Tcp { host: host.to_owned(), port })
}

/// Compiles a `ready_log_line` pattern with bounds on its size.
pub fn ready_line_regex(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_PATTERN {
        return Err(format!("the pattern is longer than {MAX_PATTERN} bytes"));
    }
    regex::RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build().map_err(|e| {
        let why: Vec<String> = e.to_string().split_whitespace().map(str::to_owned).collect();
        format!("invalid regular expression: {}", why.join(" "))
    })
}

/// A failure: the key path under the agent and the message.
pub type Problem = (Vec<&'static str>, String);

/// Checks one probe, `role` naming it in the key path.
pub fn check_probe(role: &'static str, p: &ProbeConfig) -> Result<(), Problem> {
    let target = p.target().map_err(|(key, m)| (path(role, key), m))?;
    if p.expect.is_some() && !matches!(target, Target::Http { .. }) {
        return Err((path(role, "expect"), "applies to http probes only".into()));
    }
    if p.expect.as_ref().is_some_and(|e| e.is_empty() || e.len() > MAX_BODY) {
        return Err((path(role, "expect"), format!("must be 1 to {MAX_BODY} bytes")));
    }
    for (key, d) in [("initial_delay", p.initial_delay), ("period", p.period), ("timeout", p.timeout)] {
        d.at_most(MAX_AGENT_DURATION).map_err(|m| (path(role, key), m))?;
    }
    if p.period.get() < MIN_PERIOD {
        return Err((path(role, "period"), "must be at least 100ms".into()));
    }
    if p.timeout.get().is_zero() {
        return Err((path(role, "timeout"), "must be longer than 0".into()));
    }
    for (key, n) in [("success_threshold", p.success_threshold), ("failure_threshold", p.failure_threshold)] {
        if n == 0 || n > MAX_THRESHOLD {
            return Err((path(role, key), format!("must be 1 to {MAX_THRESHOLD}")));
        }
    }
    if role == "liveness" && p.success_threshold != 1 {
        return Err((
            path(role, "success_threshold"),
            "must be 1 for a liveness probe (as in Kubernetes): one success shows it alive".into(),
        ));
    }
    Ok(())
}

fn path(role: &'static str, key: &'static str) -> Vec<&'static str> {
    if key.is_empty() { vec![role] } else { vec![role, key] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Result<Target, (&'static str, String)> {
        toml::from_str::<ProbeConfig>(s).unwrap().target()
    }

    #[test]
    fn targets_of_each_kind() {
        assert_eq!(
            target("http = \"http://127.0.0.1:8080/healthz?x=1\"").unwrap(),
            Target::Http {
                authority: "127.0.0.1:8080".into(),
                path: "/healthz?x=1".into(),
                url: "http://127.0.0.1:8080/healthz?x=1".into()
            }
        );
        assert_eq!(target("tcp = \"[::1]:5432\"").unwrap(), Target::Tcp { host: "::1".into(), port: 5432 });
        assert_eq!(target("exec = [\"test\", \"-f\", \"/run/ok\"]").unwrap().describe(), "test -f /run/ok");
    }

    #[test]
    fn bad_targets_say_why() {
        assert!(target("http = \"https://x/\"").unwrap_err().1.contains("https is not supported"));
        assert!(target("http = \"127.0.0.1:80\"").unwrap_err().1.contains("http://host:port/path"));
        assert!(target("tcp = \"localhost\"").unwrap_err().1.contains("host:port"));
        assert!(target("tcp = \"h:99999\"").is_err());
        assert!(target("exec = []").unwrap_err().1.contains("must name a program"));
        assert!(target("exec = [\"a\"]\ntcp = \"h:1\"").unwrap_err().1.contains("exactly one"));
        assert!(target("period = \"1s\"").unwrap_err().1.contains("needs one of"));
    }

    #[test]
    fn kubernetes_defaults() {
        let p: ProbeConfig = toml::from_str("tcp = \"h:1\"").unwrap();
        assert_eq!(
            (p.initial_delay, p.period, p.timeout, p.success_threshold, p.failure_threshold),
            (Dur(Duration::ZERO), Dur::secs(10), Dur::secs(1), 1, 3)
        );
    }
}
