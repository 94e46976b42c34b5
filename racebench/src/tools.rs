//! Finding rrc-record and rrc-replay.

use std::env;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub const RECORD: &str = "rrc-record";
pub const REPLAY: &str = "rrc-replay";

/// The environment variable naming the directory that holds the rrc tools.
pub const BIN_DIR_VAR: &str = "RRC_BIN_DIR";

pub struct Tools {
    pub record: PathBuf,
    pub replay: PathBuf,
}

fn has_tools(dir: &Path) -> bool {
    dir.join(RECORD).is_file() && dir.join(REPLAY).is_file()
}

/// `$RRC_BIN_DIR` when set; otherwise the directory of this executable,
/// or, for a debug build of racebench, the release directory beside it.
pub fn locate() -> Result<Tools> {
    let dir = match env::var_os(BIN_DIR_VAR) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if !has_tools(&dir) {
                bail!(
                    "{BIN_DIR_VAR}={} holds no {RECORD} and {REPLAY}",
                    dir.display()
                );
            }
            dir
        }
        None => {
            let exe = env::current_exe().context("cannot find racebench's own executable")?;
            let own_dir = exe
                .parent()
                .context("racebench's executable has no parent directory")?
                .to_path_buf();
            let candidates = [own_dir.clone(), own_dir.join("../release")];
            match candidates.into_iter().find(|d| has_tools(d)) {
                Some(dir) => dir,
                None => bail!(
                    "cannot find {RECORD} and {REPLAY} in {} (or ../release): \
                     run `cargo build --release --workspace`, or set {BIN_DIR_VAR}",
                    own_dir.display()
                ),
            }
        }
    };
    Ok(Tools {
        record: dir.join(RECORD),
        replay: dir.join(REPLAY),
    })
}
