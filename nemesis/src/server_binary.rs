//! Finding the server under test: the `stepraft-kv` binary of this workspace, built (or found
//! up to date) by cargo in the profile of the caller.

use std::path::PathBuf;
use std::process::Command;

/// Builds `stepraft-kv` with cargo (a no-op when it is up to date) and returns its path;
/// `release` picks the profile. `STEPRAFT_KV_BIN`, when set, names the binary instead.
///
/// # Errors
/// A description of why cargo could not build it.
pub fn stepraft_kv(release: bool) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("STEPRAFT_KV_BIN") {
        return Ok(PathBuf::from(path));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "-p", "stepraft-kv", "--bin", "stepraft-kv"]);
    command.args(["--message-format", "json", "--manifest-path", manifest]);
    if release {
        command.arg("--release");
    }
    let output = command.output().map_err(|error| format!("cannot run cargo: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo could not build stepraft-kv: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == "stepraft-kv")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built no stepraft-kv executable".to_owned())
}
