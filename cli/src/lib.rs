//! Conventions shared by rrc-record, rrc-replay and rrc-inspect: bad input
//! gets exactly one line on stderr, `TOOL: error: ...`, and a non-zero exit.

use clap::error::ErrorKind;
use clap::Parser;

/// Exit status for a usage error.
pub const EXIT_USAGE: i32 = 2;

/// Parses the command line; on a usage error prints one line and exits 2.
/// `--help` and `--version` print as usual and exit 0.
pub fn parse_or_exit<T: Parser>(tool: &str) -> T {
    match T::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                eprintln!(
                    "{tool}: error: {} (see {tool} --help)",
                    first_line(&e.to_string())
                );
                std::process::exit(EXIT_USAGE);
            }
        },
    }
}

/// Prints an error chain as one line and exits with `code`.
pub fn fail(tool: &str, message: &str, code: i32) -> ! {
    eprintln!("{tool}: error: {}", one_line(message));
    std::process::exit(code);
}

/// Folds a possibly multi-line message onto one line.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first line of clap's rendering, joined with the next one when it
/// ends in a colon (clap lists missing arguments there).
fn first_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut msg = first.trim_start_matches("error:").trim().to_string();
    if msg.ends_with(':') {
        if let Some(next) = lines.next() {
            msg.push(' ');
            msg.push_str(next);
        }
    }
    msg
}

/// The environment variable naming the directory that holds the rrc tools.
pub const BIN_DIR_VAR: &str = "RRC_BIN_DIR";

/// Where `rrc-record` and `rrc-replay` are, for programs that drive them.
pub struct RrcTools {
    pub record: std::path::PathBuf,
    pub replay: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("{BIN_DIR_VAR}={0} holds no rrc-record and rrc-replay")]
    NotInBinDir(String),
    #[error("cannot find {0}'s own executable: {1}")]
    NoOwnExecutable(String, std::io::Error),
    #[error(
        "cannot find rrc-record and rrc-replay in {0} (or ../release): run `cargo build --release --workspace`, or set {BIN_DIR_VAR}"
    )]
    NotBuilt(String),
}

/// `$RRC_BIN_DIR` when set; otherwise the directory of the calling
/// executable (`caller` names it in errors) or, for a debug build of it,
/// the release directory beside that.
pub fn locate_rrc_tools(caller: &str) -> Result<RrcTools, LocateError> {
    use std::path::{Path, PathBuf};
    fn has_tools(dir: &Path) -> bool {
        dir.join("rrc-record").is_file() && dir.join("rrc-replay").is_file()
    }
    let dir = match std::env::var_os(BIN_DIR_VAR) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if !has_tools(&dir) {
                return Err(LocateError::NotInBinDir(dir.display().to_string()));
            }
            dir
        }
        None => {
            let exe = std::env::current_exe()
                .map_err(|e| LocateError::NoOwnExecutable(caller.to_string(), e))?;
            let own_dir = exe.parent().unwrap_or(Path::new("/")).to_path_buf();
            let candidates = [own_dir.clone(), own_dir.join("../release")];
            match candidates.into_iter().find(|d| has_tools(d)) {
                Some(dir) => dir,
                None => return Err(LocateError::NotBuilt(own_dir.display().to_string())),
            }
        }
    };
    Ok(RrcTools {
        record: dir.join("rrc-record"),
        replay: dir.join("rrc-replay"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn folds_lines() {
        assert_eq!(super::one_line("a\n\n  b\n"), "a b");
        assert_eq!(
            super::first_line("error: unexpected argument 'x'\n\nUsage: y"),
            "unexpected argument 'x'"
        );
    }
}
