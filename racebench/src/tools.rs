//! Finding rrc-record and rrc-replay.

use std::path::PathBuf;

use anyhow::Result;

pub struct Tools {
    pub record: PathBuf,
    pub replay: PathBuf,
}

/// `$RRC_BIN_DIR` when set; otherwise the directory of this executable,
/// or, for a debug build of racebench, the release directory beside it.
pub fn locate() -> Result<Tools> {
    let tools = rrc_cli::locate_rrc_tools("racebench")?;
    Ok(Tools {
        record: tools.record,
        replay: tools.replay,
    })
}
