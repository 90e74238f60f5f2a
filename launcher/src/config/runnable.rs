//! Whether an agent can start: its working directory exists and its program is an executable
//! file, found as `execvp` finds it. The config is checked with it before anything starts, and
//! the spawner finds the program the same way.

use super::model::AgentConfig;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

/// Where the agent's program is: a path with a `/` is taken relative to its working
/// directory (so it does not depend on the launcher's), a bare name is looked up in `PATH`.
pub fn program(command: &str, working_dir: &Path) -> PathBuf {
    if command.contains('/') { working_dir.join(command) } else { PathBuf::from(command) }
}

/// `PATH` when neither the agent nor the launcher has one (what a login shell would use).
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Where a bare command name is looked up: the agent's `PATH`, else the launcher's (which the
/// agent inherits), else [`DEFAULT_PATH`].
pub fn search_path(agent: &AgentConfig) -> OsString {
    agent
        .env
        .get("PATH")
        .map(OsString::from)
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| DEFAULT_PATH.into())
}

/// Why the agent cannot start from `working_dir`, with the setting at fault (`working_dir` or
/// `command`); `None` when both look right. `check`, the start and every reload refuse a config
/// for it; after a failed start it names the cause.
pub fn unrunnable(agent: &AgentConfig, working_dir: &Path) -> Option<(&'static str, String)> {
    let dir = working_dir.display();
    match std::fs::metadata(working_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Some(("working_dir", format!("working directory {dir} does not exist")));
        }
        Err(e) => return Some(("working_dir", format!("working directory {dir}: {e}"))),
        Ok(m) if !m.is_dir() => {
            return Some(("working_dir", format!("working directory {dir} is not a directory")));
        }
        Ok(_) => {}
    }
    if agent.command.contains('/') {
        let p = program(&agent.command, working_dir);
        return not_executable(&p).map(|why| ("command", format!("program {} {why}", p.display())));
    }
    let path = search_path(agent);
    find_in_path(&agent.command, &path).err().map(|_| {
        let path = path.to_string_lossy();
        ("command", format!("no executable {:?} in any directory of PATH ({path})", agent.command))
    })
}

/// Why a program that is not an agent's (a hook's) cannot start from `working_dir`: a `command`
/// with a `/` is taken from there, a bare name is looked up in `path` (the program's own
/// `PATH`), else as for an agent.
pub fn command_unrunnable(command: &str, working_dir: &Path, path: Option<&String>) -> Option<String> {
    if command.contains('/') {
        let p = program(command, working_dir);
        return not_executable(&p).map(|why| format!("program {} {why}", p.display()));
    }
    let path =
        path.map(OsString::from).or_else(|| std::env::var_os("PATH")).unwrap_or_else(|| DEFAULT_PATH.into());
    find_in_path(command, &path)
        .err()
        .map(|_| format!("no executable {command:?} in any directory of PATH ({})", path.to_string_lossy()))
}

/// Why `path` cannot be executed, if it cannot.
fn not_executable(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some("does not exist".into()),
        Err(e) => Some(format!("cannot be examined: {e}")),
        Ok(m) if m.is_dir() => Some("is a directory".into()),
        Ok(m) if !m.is_file() => Some("is not a regular file".into()),
        Ok(_) => match nix::unistd::access(path, nix::unistd::AccessFlags::X_OK) {
            Ok(()) => None,
            Err(_) => Some("is not executable".into()),
        },
    }
}

/// The first executable file called `name` in the directories of `path`, as `execvp` finds it.
pub fn find_in_path(name: &str, path: &OsStr) -> io::Result<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| not_executable(p).is_none())
        .ok_or_else(|| io::Error::from_raw_os_error(nix::libc::ENOENT))
}
