//! Replay modes: a name and the extra flags rrc-replay gets in that mode.

use anyhow::{bail, Result};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mode {
    pub name: String,
    pub flags: Vec<String>,
}

/// The modes racebench knows without being told: rrc-replay's default
/// (recorded intervals enforced) and `--no-intervals`.
pub fn builtin() -> Vec<Mode> {
    vec![
        Mode {
            name: "intervals".into(),
            flags: vec![],
        },
        Mode {
            name: "no-intervals".into(),
            flags: vec!["--no-intervals".into()],
        },
    ]
}

/// Parses `NAME=FLAG1,FLAG2` (flags may be empty: `NAME=`).
pub fn parse_definition(text: &str) -> Result<Mode> {
    let Some((name, flags)) = text.split_once('=') else {
        bail!("a mode is NAME=FLAGS, e.g. no-intervals=--no-intervals; got {text:?}");
    };
    let name = name.trim();
    if name.is_empty() || name.contains(',') || name.contains(char::is_whitespace) {
        bail!("bad mode name {name:?} in {text:?}");
    }
    let flags = flags
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(String::from)
        .collect();
    Ok(Mode {
        name: name.into(),
        flags,
    })
}

/// The modes to run: those named in `selected` (default: the built-in
/// ones), then every mode defined with `--mode` that is not named there.
/// A definition replaces a built-in mode of the same name.
pub fn resolve(selected: Option<&[String]>, definitions: &[Mode]) -> Result<Vec<Mode>> {
    let mut known = builtin();
    for def in definitions {
        match known.iter_mut().find(|m| m.name == def.name) {
            Some(existing) => *existing = def.clone(),
            None => known.push(def.clone()),
        }
    }
    let mut modes = Vec::new();
    match selected {
        Some(names) => {
            for name in names {
                let Some(mode) = known.iter().find(|m| &m.name == name) else {
                    let names: Vec<&str> = known.iter().map(|m| m.name.as_str()).collect();
                    bail!(
                        "unknown mode {name:?}; known: {} (define one with --mode NAME=FLAGS)",
                        names.join(", ")
                    );
                };
                if !modes.contains(mode) {
                    modes.push(mode.clone());
                }
            }
        }
        None => {
            for mode in builtin() {
                let mode = known
                    .iter()
                    .find(|m| m.name == mode.name)
                    .cloned()
                    .unwrap_or(mode);
                modes.push(mode);
            }
        }
    }
    for def in definitions {
        if !modes.iter().any(|m| m.name == def.name) {
            modes.push(def.clone());
        }
    }
    if modes.is_empty() {
        bail!("no replay modes to run");
    }
    Ok(modes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_definitions() {
        let m = parse_definition("thread-anchor=--anchor=thread,--no-order-returns").unwrap();
        assert_eq!(m.name, "thread-anchor");
        assert_eq!(m.flags, vec!["--anchor=thread", "--no-order-returns"]);
        assert_eq!(
            parse_definition("plain=").unwrap().flags,
            Vec::<String>::new()
        );
        assert!(parse_definition("nothing").is_err());
        assert!(parse_definition("=--x").is_err());
    }

    #[test]
    fn resolves_modes() {
        let names = |modes: Vec<Mode>| modes.into_iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(
            names(resolve(None, &[]).unwrap()),
            ["intervals", "no-intervals"]
        );
        let extra = parse_definition("ordered=--order-returns").unwrap();
        assert_eq!(
            names(resolve(None, std::slice::from_ref(&extra)).unwrap()),
            ["intervals", "no-intervals", "ordered"]
        );
        let only = vec!["ordered".to_string()];
        assert_eq!(names(resolve(Some(&only), &[extra]).unwrap()), ["ordered"]);
        let redefined = parse_definition("intervals=--x").unwrap();
        let modes = resolve(None, &[redefined]).unwrap();
        assert_eq!(modes[0].flags, ["--x"]);
        assert_eq!(modes.len(), 2);
        assert!(resolve(Some(&["nope".to_string()]), &[]).is_err());
    }
}
