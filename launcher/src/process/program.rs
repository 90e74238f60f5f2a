//! Starting a program that is not an agent (a hook) the way agents are started: directly,
//! in its own process group, killed if the launcher dies, with its descriptors limited, and
//! registered as a main process so that the sampler's orphan reaping never takes its exit
//! status. Its stdin, stdout and stderr are pipes to the launcher; descriptor 3 is
//! `/dev/null` (it has no notify pipe).

use super::child::{self, AgentChild};
use super::vfork;
use crate::config::runnable::{find_in_path, program};
use nix::fcntl::OFlag;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use tokio::net::unix::pipe;

pub struct Started {
    pub child: AgentChild,
    pub stdin: pipe::Sender,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
}

/// Starts `command` with `args` in `working_dir` with exactly the environment `env`; a bare
/// command name is looked up in `env`'s `PATH`.
pub fn start(
    command: &str,
    args: &[String],
    env: &BTreeMap<OsString, OsString>,
    working_dir: &Path,
) -> io::Result<Started> {
    let argv0 = program(command, working_dir);
    let executable = if command.contains('/') {
        argv0.clone()
    } else {
        let path =
            env.get(OsStr::new("PATH")).cloned().unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        find_in_path(command, &path)?
    };
    let (stdin_read, stdin_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (stdout_read, stdout_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (stderr_read, stderr_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let null = std::fs::File::open("/dev/null")?;
    let fds = [stdin_read.as_fd(), stdout_write.as_fd(), stderr_write.as_fd(), null.as_fd()];
    let plan = super::plan(&executable, &argv0, args, env, working_dir, fds, None)?;
    let child = child::spawn_main(|| vfork::spawn(&plan))?;
    drop(plan);
    drop((stdin_read, stdout_write, stderr_write));
    Ok(Started {
        child,
        stdin: pipe::Sender::from_owned_fd(stdin_write)?,
        stdout: pipe::Receiver::from_owned_fd(stdout_read)?,
        stderr: pipe::Receiver::from_owned_fd(stderr_read)?,
    })
}
