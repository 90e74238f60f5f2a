//! An exec probe: the command, in the agent's working directory and environment, in a process
//! group of its own; exit code 0 is success. It is taken in charge like an agent's main process
//! (waited for through a pidfd, never reaped by the orphan reaper), and when the check is
//! dropped (its timeout, a stop) the process and its whole group are killed and reaped.

use crate::process::child;
use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};

pub async fn check(argv: &[String], dir: &Path, env: &BTreeMap<String, String>) -> Result<String, String> {
    let Some((program, args)) = argv.split_first() else { return Err("no command".into()) };
    let mut child = child::spawn_main(|| {
        let spawned = Command::new(program)
            .args(args)
            .envs(env)
            .current_dir(dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // Waited for (and reaped) through the AgentChild, not through std's Child.
        i32::try_from(spawned.id()).map_err(std::io::Error::other)
    })
    .map_err(|e| format!("cannot start {program:?}: {e}"))?;
    let status = child.wait().await.map_err(|e| format!("cannot wait for {program:?}: {e}"))?;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok("exit code 0".into()),
        (Some(code), _) => Err(format!("exit code {code}")),
        (None, Some(sig)) => Err(format!(
            "killed by {}",
            nix::sys::signal::Signal::try_from(sig)
                .map_or_else(|_| sig.to_string(), |s| s.as_str().to_owned())
        )),
        (None, None) => Err("ended with an unknown status".into()),
    }
}
