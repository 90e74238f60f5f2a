//! The launcher's configuration: `agents.toml`, parsed, validated and ordered into a start
//! plan. Every error names the file, line and column, and the agent and field when known.

mod locate;
mod model;
mod retention;
mod validate;
mod values;

pub use model::{AgentConfig, LauncherConfig, OnHeartbeatTimeout, Ready, Restart};

use locate::{Location, Locator};
use std::fmt;
use std::path::{Path, PathBuf};

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
}

impl Config {
    /// The agent's working directory: relative paths are taken from the config file's
    /// directory, so the launcher behaves the same whatever directory it was started in.
    pub fn working_dir(&self, agent: &AgentConfig) -> PathBuf {
        let base = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        match &agent.working_dir {
            Some(dir) => base.join(dir),
            None => base.to_owned(),
        }
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

/// Reads and validates the config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        location: None,
        message: format!("cannot read the config file: {e}"),
    })?;
    parse(path, &text)
}

/// Parses and validates config text; `path` is used in messages and for relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let doc = locate::parse(text);
    let locator = Locator::new(text, doc.as_ref());
    let file: model::File = toml::from_str(text).map_err(|e| ConfigError {
        file: path.to_owned(),
        location: Some(e.span().map(|s| locator.at(s.start)).unwrap_or_default()),
        message: e.message().trim().to_owned(),
    })?;
    let plan = validate::validate(&file, &locator).map_err(|(location, message)| ConfigError {
        file: path.to_owned(),
        location: Some(location),
        message,
    })?;
    Ok(Config { path: path.to_owned(), launcher: file.launcher, agents: file.agent, plan })
}

#[cfg(test)]
mod tests;
