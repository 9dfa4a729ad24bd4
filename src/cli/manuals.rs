//! `flamefire completions` and `flamefire man`: generated from the same
//! definitions as `--help`, so they cannot drift from it.

use std::path::PathBuf;

use clap::CommandFactory;

use super::Cli;
use crate::error::{Error, Result};

/// `flamefire completions SHELL`: generated from the same definitions as `--help`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "flamefire", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `flamefire man`: flamefire(1) in roff, listing every subcommand.
pub fn man_page() -> String {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .expect("rendering to memory does not fail");
    String::from_utf8_lossy(&out).into_owned()
}

/// `flamefire man --dir DIR`: flamefire.1 and one `flamefire-SUB.1` per
/// subcommand (nested ones too, e.g. flamefire-document-deploy.1).
pub fn man_pages(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut written = Vec::new();
    write_man_pages(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_man_pages(
    cmd: &clap::Command,
    dir: &std::path::Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut out = Vec::new();
    man.render(&mut out)
        .expect("rendering to memory does not fail");
    std::fs::write(&path, out).map_err(|e| Error::io("write", &path, e))?;
    written.push(path);
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_man_pages(sub, dir, written)?;
    }
    Ok(())
}
