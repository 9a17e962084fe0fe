//! Documentation generated from the command-line definition: shell completion
//! scripts (`clap_complete`) and manual pages (`clap_mangen`), plus the
//! hand-written netsend.toml(5) kept in `packaging/`.

use std::path::Path;

use clap::CommandFactory;
use netsend_wire::status::NetApiStatus;

use crate::args::Cli;
use crate::Failure;

/// netsend.toml(5), the configuration file's manual page (roff).
const CONFIG_MANPAGE: &str = include_str!("../../../packaging/netsend.toml.5");

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure::new(
        NetApiStatus::ERROR_INVALID_PARAMETER,
        format!("{what}: {e}"),
    )
}

/// For bash: the recipient of `netsend send` is completed from the browse
/// list (`netsend view --names`: the hosts and their message names), the
/// rest by clap's script.
const BASH_SEND_NAMES: &str = r#"
_netsend_send_names() {
    local i words=0
    if [[ "${COMP_WORDS[1],,}" == send ]]; then
        for ((i = 2; i < COMP_CWORD; i++)); do
            case "${COMP_WORDS[i]}" in
                --from|--server|--expire) ((i++)) ;;
                -*) ;;
                *) words=$((words + 1)) ;;
            esac
        done
        if [[ $words -eq 0 && "${COMP_WORDS[COMP_CWORD]}" != -* ]]; then
            COMPREPLY=($(compgen -W "$(netsend view --names 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}"))
            return 0
        fi
    fi
    _netsend "$@"
}
complete -F _netsend_send_names -o bashdefault -o default netsend
"#;

/// Prints the completion script for `shell` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "netsend", &mut std::io::stdout());
    if shell == clap_complete::Shell::Bash {
        print!("{BASH_SEND_NAMES}");
    }
    Ok(())
}

/// Writes netsend(1), netsend-SUBCOMMAND(1) for every subcommand and
/// netsend.toml(5) into `out`; without `out`, prints netsend(1).
pub(crate) fn manpages(out: Option<&Path>) -> Result<(), Failure> {
    let mut command = Cli::command();
    // As generate_to does: complete the definition (help subcommand, versions).
    command.build();
    let Some(dir) = out else {
        return clap_mangen::Man::new(command)
            .render(&mut std::io::stdout())
            .map_err(|e| io_failure("stdout", e));
    };
    std::fs::create_dir_all(dir).map_err(|e| io_failure(&dir.display().to_string(), e))?;
    clap_mangen::generate_to(command, dir)
        .map_err(|e| io_failure(&dir.display().to_string(), e))?;
    let config_page = dir.join("netsend.toml.5");
    std::fs::write(&config_page, CONFIG_MANPAGE)
        .map_err(|e| io_failure(&config_page.display().to_string(), e))?;
    Ok(())
}
