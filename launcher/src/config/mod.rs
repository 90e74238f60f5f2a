//! The launcher's configuration: `agents.toml`, parsed, validated and ordered into a start
//! plan. Every error names the file, line and column, and the agent and field when known.

pub mod alert;
pub mod hooks;
pub mod limits;
mod locate;
mod model;
pub mod probe;
mod retention;
pub mod runnable;
mod schedule;
mod validate;
mod values;

pub use model::{AgentConfig, LauncherConfig, OnHeartbeatTimeout, Ready, Restart};
pub use schedule::{Overlap, Schedule};
pub use validate::ALL_AGENTS;

use locate::{Location, Locator};
use std::fmt;
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest config file read: far beyond any real one, small enough to hold in memory.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub launcher: LauncherConfig,
    /// In file order.
    pub agents: Vec<AgentConfig>,
    /// Indices into `agents` of the enabled agents, in start order: dependencies first,
    /// otherwise file order.
    pub plan: Vec<usize>,
    /// `[[hook]]` tables, in file order, each named.
    pub hooks: Vec<hooks::HookConfig>,
    /// The text it was parsed from, so that a file event that changed nothing is no reload.
    pub text: String,
    /// The `[[alert]]` rules, in file order.
    pub alerts: Vec<alert::AlertRule>,
}

impl Config {
    /// The agent's working directory: relative paths are taken from the config file's
    /// directory, so the launcher behaves the same whatever directory it was started in.
    pub fn working_dir(&self, agent: &AgentConfig) -> PathBuf {
        let base = self.base_dir();
        match &agent.working_dir {
            Some(dir) => base.join(dir),
            None => base,
        }
    }

    /// The config file's directory: relative paths in it start there, and hooks run there.
    pub fn base_dir(&self) -> PathBuf {
        self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned()
    }
}

/// A configuration error, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub location: Option<Location>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(loc) = &self.location {
            if loc.line > 0 {
                write!(f, ":{}:{}", loc.line, loc.column)?;
            }
            write!(f, ":")?;
            match (&loc.agent, &loc.field) {
                (Some(a), Some(field)) => write!(f, " agent {a:?}, field `{field}`:")?,
                (Some(a), None) => write!(f, " agent {a:?}:")?,
                (None, Some(field)) => write!(f, " field `{field}`:")?,
                (None, None) => {}
            }
            write!(f, " {}", self.message)
        } else {
            write!(f, ": {}", self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates the config file, and checks that its agents can start.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse_runnable(path, &read(path)?)
}

/// Reads the config file: the one way it is read, at start and at every reload. Only a regular
/// file of at most [`MAX_FILE_BYTES`] is read: a FIFO would block the reader until someone
/// writes, a device such as /dev/zero never ends. The open does not block either (a FIFO's
/// open waits for a writer without `O_NONBLOCK`); the checks are on what was opened, not on
/// the path, so a file swapped in between cannot slip through. Blocking I/O: call it off the
/// async runtime.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    let fail = |why: String| ConfigError {
        file: path.to_owned(),
        location: None,
        message: format!("cannot read the config file: {why}"),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail(format!("it is {}, not a regular file", kind(&meta))));
    }
    let too_big = |len: u64| fail(format!("it is larger than 16 MiB ({len} bytes)"));
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::new();
    // A file that grows while it is read is still cut at the limit.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(format!("it is not UTF-8 text (an invalid byte at offset {})", e.utf8_error().valid_up_to()))
    })
}

fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// [`parse`], then what only the file system can tell: every enabled agent's working
/// directory exists and its program is an executable file (found in its `PATH` when named
/// without a `/`). Disabled agents are not checked: like a systemd unit, an agent is checked
/// when it is to start, and enabling it is a reload that checks it. `parse` itself stays free
/// of the file system.
pub fn parse_runnable(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let config = parse(path, text)?;
    for &i in &config.plan {
        let agent = &config.agents[i];
        if let Some((field, message)) = runnable::unrunnable(agent, &config.working_dir(agent)) {
            let doc = locate::parse(text);
            let locator = Locator::new(text, doc.as_ref());
            let location = locator.agent_field(i, &agent.name, &[field], None);
            return Err(ConfigError { file: path.to_owned(), location: Some(location), message });
        }
    }
    let base = config.base_dir();
    for (i, hook) in config.hooks.iter().enumerate() {
        if let Some(message) = runnable::command_unrunnable(&hook.command, &base, hook.env.get("PATH")) {
            let doc = locate::parse(text);
            let locator = Locator::new(text, doc.as_ref());
            let location = locator.hook_field(i, "command", None);
            let message = format!("hook {:?}: {message}", hook.name);
            return Err(ConfigError { file: path.to_owned(), location: Some(location), message });
        }
    }
    Ok(config)
}

/// Parses and validates config text; `path` is used in messages and for relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let doc = locate::parse(text);
    let locator = Locator::new(text, doc.as_ref());
    let mut file: model::File = toml::from_str(text).map_err(|e| ConfigError {
        file: path.to_owned(),
        location: Some(e.span().map(|s| locator.at(s.start)).unwrap_or_default()),
        message: e.message().trim().to_owned(),
    })?;
    let plan = validate::validate(&file, &locator).map_err(|(location, message)| ConfigError {
        file: path.to_owned(),
        location: Some(location),
        message,
    })?;
    hooks::validate(
        &mut file.hook,
        &file.agent.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        &locator,
    )
    .map_err(|(location, message)| ConfigError {
        file: path.to_owned(),
        location: Some(location),
        message,
    })?;
    Ok(Config {
        path: path.to_owned(),
        launcher: file.launcher,
        agents: file.agent,
        plan,
        hooks: file.hook,
        text: text.to_owned(),
        alerts: file.alert,
    })
}

#[cfg(test)]
mod tests;
