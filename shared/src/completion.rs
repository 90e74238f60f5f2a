//! Shell completion scripts and man pages as both binaries print them (`completions SHELL`,
//! `man [--dir DIR]`), from their clap definitions.

use std::path::Path;

/// The completion script of `cmd` for `shell`, repaired where clap_complete gets it wrong.
pub fn script(mut cmd: clap::Command, shell: clap_complete::Shell, bin_name: &str) -> String {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, bin_name, &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    if shell == clap_complete::Shell::Bash { fix_bash(&script, bin_name) } else { script }
}

/// `cmd`'s man page on stdout, or a page per command and subcommand into `dir`.
pub fn man(cmd: clap::Command, dir: Option<&Path>) -> Result<(), String> {
    match dir {
        Some(d) => clap_mangen::generate_to(cmd, d).map_err(|e| format!("{}: {e}", d.display())),
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()).map_err(|e| e.to_string()),
    }
}

/// Repairs a bash script from clap_complete 4.6 for a binary whose name has a hyphen: its loop
/// spells the state of `agentvisor-launcher ctl` `agentvisor__launcher__subcmd__ctl`, its case
/// arms `agentvisor__subcmd__launcher__subcmd__ctl`, so nothing after the first subcommand ever
/// completes (clap-rs/clap#6421). The arms are respelled the loop's way.
pub fn fix_bash(script: &str, bin_name: &str) -> String {
    let Some((head, tail)) = bin_name.split_once('-') else { return script.to_owned() };
    let wrong = format!("{head}__subcmd__{}", tail.replace('-', "__subcmd__"));
    script.replace(&wrong, &bin_name.replace('-', "__"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn arms_are_spelled_as_the_loop_spells_them() {
        let script = "cmd=\"agentvisor__launcher__subcmd__ctl\"\n agentvisor__subcmd__launcher__subcmd__ctl)";
        let fixed = super::fix_bash(script, "agentvisor-launcher");
        assert_eq!(fixed, "cmd=\"agentvisor__launcher__subcmd__ctl\"\n agentvisor__launcher__subcmd__ctl)");
        assert_eq!(super::fix_bash("x", "plain"), "x");
    }
}
