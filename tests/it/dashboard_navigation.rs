//! The real dashboard on a real launcher, driven as an operator would: overview -> an agent's
//! detail -> events -> one event in full -> its agent, and Esc back the same way; times in
//! the zone `TZ` names (or UTC with `--utc`); an agent stopped with `ctl stop` reads as
//! stopped by the user who stopped it.

use crate::common::*;
use crate::dashboard_tui::Tui;

const FLEET: &str = r#"
[[agent]]
name = "steady"
command = "sleep"
args = ["1000"]

[[agent]]
name = "crasher"
command = "./crash.sh"
backoff = { initial = "10ms", max = "10ms" }
max_restarts = 1
"#;

fn fleet() -> (Sandbox, Launcher) {
    let sb = Sandbox::new();
    sb.script("crash.sh", "echo 'cannot open /etc/crash.conf' >&2\nexit 3");
    sb.write_config(FLEET);
    let launcher = sb.launcher();
    let db = sb.db();
    wait_state(&db, "crasher", "fatal");
    wait_state(&db, "steady", "running");
    (sb, launcher)
}

#[test]
fn overview_detail_events_event_detail_and_back() {
    let (sb, _launcher) = fleet();
    // A zone without tzdata, five and a half hours east of UTC.
    let mut tui = Tui::start_with(&sb, &sb.db(), 160, 45, &[("TZ", "XYZ-5:30")], &[]);
    tui.wait_for("Agents (2/2)", LIMIT);
    // The crashes are one line, counted, under the latest problems.
    tui.wait_for("crasher crashed 2×", LIMIT);
    // The zone is named in the header.
    tui.wait_for("UTC+05:30 │", LIMIT);

    tui.keys("\r");
    tui.wait_for("ctl restart|stop|start steady", LIMIT);
    tui.wait_for("exited/stopped", LIMIT);

    tui.keys("\t");
    tui.wait_for("Events (", LIMIT);
    // `v` then `/` and an agent: both words apply, not `sev:warningcrasher`.
    tui.keys("v/crasher kind:crashed\r");
    tui.wait_for("agent=crasher · kind=crashed · severity≥warning", LIMIT);
    // The list read for this filter (the one read before it went with the old filter).
    tui.wait_for("exited with code 3", LIMIT);

    tui.keys("\r");
    tui.wait_for("Event · crasher · crashed", LIMIT);
    // Waited for, not read at once: a frame reaches the pty in more than one write.
    tui.wait_for("exited with code 3", LIMIT);
    tui.wait_for("XYZ-5:30 UTC+05:30  (", LIMIT);

    tui.keys("\r");
    tui.wait_for("ctl restart|stop|start crasher", LIMIT);
    tui.keys("\x1b");
    tui.wait_for("Event · crasher · crashed", LIMIT);
    tui.keys("\x1b");
    tui.wait_for("agent=crasher · kind=crashed", LIMIT);
    tui.keys("\x1b");
    tui.wait_for("Agents (2/2)", LIMIT);

    tui.keys("q");
    assert!(tui.wait_exit(LIMIT).success());
}

#[test]
fn utc_on_request_and_a_stop_names_who_stopped() {
    let (sb, _launcher) = fleet();
    let mut tui = Tui::start_with(&sb, &sb.db(), 120, 30, &[("TZ", "XYZ-5:30")], &["--utc"]);
    tui.wait_for("Agents (2/2)", LIMIT);
    tui.wait_for(" UTC │", LIMIT);
    assert!(!tui.contents().contains("UTC+05:30"), "{}", tui.contents());

    let out = ctl(&sb, &["stop", "steady"]);
    assert!(out.status.success(), "{out:?}");
    let user = nix::unistd::User::from_uid(nix::unistd::getuid()).unwrap().map_or("?".into(), |u| u.name);
    tui.wait_for(&format!("stopped by {user} (ctl)"), LIMIT);
    assert!(!tui.contents().contains("signal 15"), "{}", tui.contents());

    let out = ctl(&sb, &["start", "steady"]);
    assert!(out.status.success(), "{out:?}");
    wait_until(LIMIT, "who stopped it forgotten", || {
        query_opt::<i64>(&sb.db(), "SELECT count(*) FROM agents WHERE name = 'steady' AND stopped_by IS NULL")
            .filter(|n| *n == 1)
    });
    tui.keys("q");
    assert!(tui.wait_exit(LIMIT).success());
}
