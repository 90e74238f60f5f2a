//! The one parser for both channels: newline-separated `KEY=VALUE` assignments, systemd's
//! notify format, plus Agentvisor's `X_` extension keys. Keys systemd defines but the
//! launcher has no use for are ignored, as systemd ignores keys it does not know; anything
//! that cannot be understood (no `=`, invalid UTF-8, a bad number, an unknown `X_` key) is
//! counted as malformed and otherwise skipped.

use agentvisor_shared::model::BUILTIN_AGENT_METRICS;

/// Largest datagram or line accepted; longer ones are malformed.
pub const MAX_MESSAGE: usize = 4096;
/// Longest custom metric name (after `X_METRIC_`).
const MAX_METRIC_NAME: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Ready,
    Watchdog,
    Stopping,
    Status(String),
    Errno(i64),
    Task(String),
    /// `X_TASK_DONE=ok` (true) or `=failed` (false).
    TaskDone(bool),
    Model(String),
    TokensIn(i64),
    TokensOut(i64),
    Cost(f64),
    Error(String),
    /// A custom metric, its name already in lower case.
    Metric(String, f64),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub notices: Vec<Notice>,
    pub malformed: u32,
}

/// Parses one datagram or one line of the pipe.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    parse_into(&mut out, bytes);
    out
}

/// Parses one more datagram or line into `out`.
pub fn parse_into(out: &mut Parsed, bytes: &[u8]) {
    if bytes.len() > MAX_MESSAGE {
        out.malformed += 1;
        return;
    }
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(line).ok().and_then(|l| l.split_once('=')).map(|(k, v)| assignment(k, v)) {
            Some(Ok(Some(n))) => out.notices.push(n),
            Some(Ok(None)) => {}
            Some(Err(())) | None => out.malformed += 1,
        }
    }
}

/// `Ok(None)`: a valid key the launcher ignores.
fn assignment(key: &str, value: &str) -> Result<Option<Notice>, ()> {
    let flag = |n: Notice| if value == "1" { Ok(Some(n)) } else { Err(()) };
    match key {
        "READY" => flag(Notice::Ready),
        "WATCHDOG" => flag(Notice::Watchdog),
        "STOPPING" => flag(Notice::Stopping),
        "STATUS" => Ok(Some(Notice::Status(value.to_owned()))),
        "ERRNO" => value.parse().map(|n| Some(Notice::Errno(n))).map_err(drop),
        // The launcher supervises the process it started; a new main PID is not followed.
        "MAINPID" => value.parse::<u32>().map(|_| None).map_err(drop),
        "X_TASK" => Ok(Some(Notice::Task(value.to_owned()))),
        "X_TASK_DONE" => match value.trim() {
            "ok" => Ok(Some(Notice::TaskDone(true))),
            "failed" => Ok(Some(Notice::TaskDone(false))),
            _ => Err(()),
        },
        "X_MODEL" => Ok(Some(Notice::Model(value.to_owned()))),
        "X_ERROR" => Ok(Some(Notice::Error(value.to_owned()))),
        "X_TOKENS_IN" => count(value).map(|n| Some(Notice::TokensIn(n))),
        "X_TOKENS_OUT" => count(value).map(|n| Some(Notice::TokensOut(n))),
        "X_COST" => number(value).filter(|c| *c >= 0.0).map(|c| Some(Notice::Cost(c))).ok_or(()),
        _ => {
            if let Some(name) = key.strip_prefix("X_METRIC_") {
                let name = metric_name(name).ok_or(())?;
                number(value).map(|v| Some(Notice::Metric(name, v))).ok_or(())
            } else if key.starts_with("X_") || key.is_empty() || !key.bytes().all(is_key_byte) {
                Err(())
            } else {
                Ok(None)
            }
        }
    }
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

fn count(value: &str) -> Result<i64, ()> {
    value.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or(())
}

fn number(value: &str) -> Option<f64> {
    value.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

fn metric_name(raw: &str) -> Option<String> {
    let name = raw.to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= MAX_METRIC_NAME
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    (valid && !BUILTIN_AGENT_METRICS.contains(&name.as_str())).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_done_takes_ok_or_failed() {
        let p = parse(b"X_TASK_DONE=ok\nX_TASK_DONE=failed\nX_TASK_DONE=maybe\nX_TASK=\n");
        assert_eq!(p.notices, [Notice::TaskDone(true), Notice::TaskDone(false), Notice::Task(String::new())]);
        assert_eq!(p.malformed, 1);
    }
    use proptest::prelude::*;

    #[test]
    fn systemd_and_extension_keys() {
        let p = parse(
            b"READY=1\nSTATUS=warming up\nWATCHDOG=1\nMAINPID=42\nBARRIER=1\nX_TASK=job 7\n\
              X_MODEL=gpt-x\nX_TOKENS_IN=120\nX_TOKENS_OUT=30\nX_COST=0.25\nX_ERROR=oops\n\
              X_METRIC_QUEUE_DEPTH=3\nERRNO=5\nSTOPPING=1\n",
        );
        assert_eq!(p.malformed, 0);
        assert_eq!(
            p.notices,
            vec![
                Notice::Ready,
                Notice::Status("warming up".into()),
                Notice::Watchdog,
                Notice::Task("job 7".into()),
                Notice::Model("gpt-x".into()),
                Notice::TokensIn(120),
                Notice::TokensOut(30),
                Notice::Cost(0.25),
                Notice::Error("oops".into()),
                Notice::Metric("queue_depth".into(), 3.0),
                Notice::Errno(5),
                Notice::Stopping,
            ]
        );
    }

    #[test]
    fn malformed_is_counted_not_fatal() {
        let p = parse(b"garbage\nREADY=2\nX_TOKENS_IN=-1\nX_COST=abc\nX_METRIC_CPU_PERCENT=1\nX_NOPE=1\n\xff=1\nWATCHDOG=1\n");
        assert_eq!(p.notices, vec![Notice::Watchdog]);
        assert_eq!(p.malformed, 7);
        assert_eq!(parse(&vec![b'a'; MAX_MESSAGE + 1]).malformed, 1);
        assert_eq!(parse(b"X_METRIC_=1\nX_METRIC_A-B=1\nX_METRIC_X=inf\n").malformed, 3);
        assert_eq!(parse(b"").malformed, 0);
        assert_eq!(parse(b"READY=1\r\n").notices, vec![Notice::Ready]);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let p = parse(&bytes);
            prop_assert!(p.notices.len() + p.malformed as usize <= bytes.len() + 1);
        }

        #[test]
        fn never_panics_on_near_valid_text(s in "([A-Z_]{0,12}=[ -~]{0,20}\n){0,20}") {
            let _ = parse(s.as_bytes());
        }
    }
}
