//! Which hosts the fleet view reaches and how: `--host` flags and/or a `fleet.toml`, and the
//! command templates that turn a host into a process (ssh by default).

use serde::Deserialize;
use std::path::Path;
use std::process::Command;

/// Streams a host's state; {args} becomes `stream --json [--db DB]`.
pub const DEFAULT_COMMAND: &str = "ssh {host} -- agentvisor-dashboard {args}";
/// Opens a host's own dashboard with a terminal; {args} becomes `[--db DB] --back-on-esc`.
pub const DEFAULT_INTERACTIVE: &str = "ssh -t {host} -- agentvisor-dashboard {args}";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// What {host} becomes: a name the transport understands (an ssh alias, a host name).
    pub name: String,
    /// The database on that host; `None` lets the far side find its own.
    pub db: Option<String>,
    pub command: Template,
    pub interactive: Template,
}

impl Host {
    /// The process that streams this host.
    pub fn stream_command(&self) -> Command {
        let mut args = vec!["stream".to_owned(), "--json".to_owned()];
        args.extend(self.db_args());
        self.command.command(&self.name, &args)
    }

    /// The process that shows this host's dashboard on the current terminal.
    pub fn interactive_command(&self) -> Command {
        let mut args = self.db_args();
        args.push("--back-on-esc".to_owned());
        self.interactive.command(&self.name, &args)
    }

    fn db_args(&self) -> Vec<String> {
        self.db.iter().flat_map(|db| ["--db".to_owned(), db.clone()]).collect()
    }
}

/// A command line split on whitespace, with `{host}` replaced inside words and a word
/// `{args}` replaced by the dashboard's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    words: Vec<String>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        if words.is_empty() {
            return Err("the command template is empty".into());
        }
        if !words.iter().any(|w| w == "{args}") {
            return Err(format!("the command template {text:?} has no {{args}} word"));
        }
        Ok(Template { words })
    }

    pub fn command(&self, host: &str, args: &[String]) -> Command {
        // ssh joins the remote words with spaces for the far side's shell: quote them there.
        let remote_shell = Path::new(&self.words[0]).file_name().is_some_and(|n| n == "ssh");
        let mut argv: Vec<String> = Vec::new();
        for w in &self.words {
            if w == "{args}" {
                argv.extend(args.iter().map(|a| if remote_shell { shell_quote(a) } else { a.clone() }));
            } else {
                argv.push(w.replace("{host}", host));
            }
        }
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    }
}

/// `a` as one word for a POSIX shell.
fn shell_quote(a: &str) -> String {
    let safe = !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c));
    if safe { a.to_owned() } else { format!("'{}'", a.replace('\'', r"'\''")) }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    command: Option<String>,
    interactive: Option<String>,
    #[serde(default)]
    host: Vec<HostEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    name: String,
    db: Option<String>,
    command: Option<String>,
    interactive: Option<String>,
}

/// The hosts from `--host` flags (with `--db` as every host's database and `--transport` as
/// the command) followed by those of the fleet file. Errors are located: `file:line:col: …`.
pub fn hosts(
    flags: &[String],
    db: Option<&Path>,
    transport: Option<&str>,
    file: Option<&Path>,
) -> Result<Vec<Host>, String> {
    let flag_template = |t: Option<&str>, default: &str, what: &str| {
        Template::parse(t.unwrap_or(default)).map_err(|e| format!("{what}: {e}"))
    };
    let command = flag_template(transport, DEFAULT_COMMAND, "--transport")?;
    // A custom transport serves both; the default gets ssh's -t for the drill-down.
    let interactive = flag_template(transport, DEFAULT_INTERACTIVE, "--transport")?;
    let mut out: Vec<Host> = flags
        .iter()
        .map(|name| Host {
            name: name.clone(),
            db: db.map(|p| p.display().to_string()),
            command: command.clone(),
            interactive: interactive.clone(),
        })
        .collect();
    if let Some(path) = file {
        out.extend(read_file(path, transport)?);
    }
    if out.is_empty() {
        return Err("no hosts: give --host NAME or a fleet file with [[host]] tables".into());
    }
    for (i, h) in out.iter().enumerate() {
        if h.name.is_empty() || h.name.starts_with('-') || h.name.chars().any(char::is_whitespace) {
            return Err(format!(
                "host {:?}: a host name cannot be empty, start with '-' or hold spaces",
                h.name
            ));
        }
        if out[..i].iter().any(|o| o.name == h.name) {
            return Err(format!("host {:?} is listed twice", h.name));
        }
    }
    Ok(out)
}

fn read_file(path: &Path, transport: Option<&str>) -> Result<Vec<Host>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let at = |offset: usize| {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{col}", path.display())
    };
    let file: FleetFile = toml::from_str(&text).map_err(|e| {
        let place = e.span().map_or_else(|| path.display().to_string(), |s| at(s.start));
        format!("{place}: {}", e.message().trim_end())
    })?;
    // A template's place in the file, for its error: where its text first occurs.
    let locate = |key_text: &str| text.find(key_text).map_or_else(|| path.display().to_string(), at);
    let template = |t: Option<&str>, default: &str| -> Result<Template, String> {
        match t {
            Some(t) => Template::parse(t).map_err(|e| format!("{}: {e}", locate(t))),
            None => Template::parse(default).map_err(|e| format!("{}: {e}", path.display())),
        }
    };
    let command = template(file.command.as_deref().or(transport), DEFAULT_COMMAND)?;
    let interactive =
        template(file.interactive.as_deref().or(file.command.as_deref()).or(transport), DEFAULT_INTERACTIVE)?;
    file.host
        .into_iter()
        .map(|h| {
            Ok(Host {
                command: match &h.command {
                    Some(t) => template(Some(t), DEFAULT_COMMAND)?,
                    None => command.clone(),
                },
                interactive: match (&h.interactive, &h.command) {
                    (Some(t), _) | (None, Some(t)) => template(Some(t), DEFAULT_INTERACTIVE)?,
                    (None, None) => interactive.clone(),
                },
                name: h.name,
                db: h.db,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(c: &Command) -> Vec<String> {
        std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_default_transport_is_ssh_with_quoted_remote_words() {
        let hs = hosts(&["box1".into()], Some(Path::new("/srv/my state.db")), None, None).unwrap();
        assert_eq!(
            argv(&hs[0].stream_command()),
            ["ssh", "box1", "--", "agentvisor-dashboard", "stream", "--json", "--db", "'/srv/my state.db'"]
        );
        assert_eq!(
            argv(&hs[0].interactive_command()),
            [
                "ssh",
                "-t",
                "box1",
                "--",
                "agentvisor-dashboard",
                "--db",
                "'/srv/my state.db'",
                "--back-on-esc"
            ]
        );
    }

    #[test]
    fn a_local_transport_gets_the_words_as_they_are() {
        let hs = hosts(&["a".into()], None, Some("/bin/env H={host} dash {args}"), None).unwrap();
        assert_eq!(argv(&hs[0].stream_command()), ["/bin/env", "H=a", "dash", "stream", "--json"]);
        assert_eq!(argv(&hs[0].interactive_command()), ["/bin/env", "H=a", "dash", "--back-on-esc"]);
    }

    #[test]
    fn a_fleet_file_sets_databases_and_templates_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fleet.toml");
        std::fs::write(
            &p,
            "command = \"run {host} {args}\"\n\n[[host]]\nname = \"gpu\"\ndb = \"/d/s.db\"\n\n\
             [[host]]\nname = \"edge\"\ncommand = \"other {args}\"\n",
        )
        .unwrap();
        let hs = hosts(&["x".into()], None, None, Some(&p)).unwrap();
        assert_eq!(hs.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["x", "gpu", "edge"]);
        assert_eq!(argv(&hs[1].stream_command()), ["run", "gpu", "stream", "--json", "--db", "/d/s.db"]);
        assert_eq!(argv(&hs[1].interactive_command()), ["run", "gpu", "--db", "/d/s.db", "--back-on-esc"]);
        assert_eq!(argv(&hs[2].stream_command()), ["other", "stream", "--json"]);
    }

    #[test]
    fn bad_files_and_flags_are_refused_with_a_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fleet.toml");
        std::fs::write(&p, "[[host]]\nname = \"a\"\nnmae = \"b\"\n").unwrap();
        let e = hosts(&[], None, None, Some(&p)).unwrap_err();
        assert!(e.starts_with(&format!("{}:3:1: unknown field `nmae`", p.display())), "{e}");
        std::fs::write(&p, "[[host]]\nname = \"a\"\ncommand = \"ssh {host}\"\n").unwrap();
        let e = hosts(&[], None, None, Some(&p)).unwrap_err();
        assert!(e.starts_with(&format!("{}:3:12: ", p.display())) && e.contains("no {args}"), "{e}");
        assert!(hosts(&[], None, None, None).unwrap_err().starts_with("no hosts"));
        assert!(hosts(&["a".into(), "a".into()], None, None, None).unwrap_err().contains("twice"));
        assert!(hosts(&["-oProxyCommand=x".into()], None, None, None).is_err());
    }
}
