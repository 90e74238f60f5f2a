//! The few fields of a `/proc/PID/stat` line that the launcher uses, parsed without the
//! procfs crate's parse of all 52 fields: the sampler reads this line for every agent process
//! every second (the figures are in docs/architecture.md).

/// See `proc_pid_stat(5)`; field numbers there are 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// User and system CPU time, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub num_threads: i64,
    /// Start time in clock ticks after boot.
    pub starttime: u64,
    /// Resident set size, in pages.
    pub rss: u64,
}

/// Parses one stat line; `None` if it is not one. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so the fields after it are
/// found from the last `)`.
pub fn parse(line: &[u8]) -> Option<Stat> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    let pid = number(line.get(..open)?.trim_ascii())?;
    // Fields 3 onwards: `rest[i]` is field i + 3.
    let mut rest = line.get(close + 1..)?.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let mut field = |skip: usize| rest.nth(skip);
    let state = match field(0)? {
        [s] => char::from(*s),
        _ => return None,
    };
    let ppid = number(field(0)?)?;
    let pgrp = number(field(0)?)?;
    let utime = number(field(8)?)?;
    let stime = number(field(0)?)?;
    let num_threads = number(field(4)?)?;
    let starttime = number(field(1)?)?;
    let rss = number(field(1)?)?;
    Some(Stat { pid, state, ppid, pgrp, utime, stime, num_threads, starttime, rss })
}

fn number<T: std::str::FromStr>(field: &[u8]) -> Option<T> {
    std::str::from_utf8(field).ok()?.trim_ascii_end().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromRead;

    #[test]
    fn reads_the_fields_after_a_command_name_with_spaces_and_parentheses() {
        let line = b"4242 (a (b) c) S 1 4240 4240 0 -1 4194560 10 0 0 0 7 3 0 0 20 0 5 0 123456 1000000 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert_eq!(
            parse(line),
            Some(Stat {
                pid: 4242,
                state: 'S',
                ppid: 1,
                pgrp: 4240,
                utime: 7,
                stime: 3,
                num_threads: 5,
                starttime: 123456,
                rss: 321
            })
        );
    }

    #[test]
    fn refuses_what_is_not_a_stat_line() {
        for bad in [
            &b""[..],
            b"garbage",
            b"12 (x)",
            b"12 (x) S 1",
            b"x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21",
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    /// Every process on this machine, parsed here and by the procfs crate, gives the same fields.
    #[test]
    fn agrees_with_procfs_on_every_process() {
        let mut compared = 0;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(bytes) = std::fs::read(entry.path().join("stat")) else { continue };
            let Ok(theirs) = procfs::process::Stat::from_read(&bytes[..]) else { continue };
            let ours = parse(&bytes).unwrap();
            let expected = Stat {
                pid: theirs.pid,
                state: theirs.state,
                ppid: theirs.ppid,
                pgrp: theirs.pgrp,
                utime: theirs.utime,
                stime: theirs.stime,
                num_threads: theirs.num_threads,
                starttime: theirs.starttime,
                rss: theirs.rss,
            };
            assert_eq!(ours, expected);
            compared += 1;
        }
        assert!(compared > 1, "only {compared} processes compared");
    }
}
