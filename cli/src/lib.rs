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
