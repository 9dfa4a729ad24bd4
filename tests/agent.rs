//! Runs the document's script on this machine exactly as the SSM agent
//! does, for the host tests (shell matrix, cancel, truncation, hostile files).
//!
//! amazon-ssm-agent writes the `runCommand` lines to `_script.sh` (mode
//! 0700, `pluginutil.CreateScriptFile`) and starts `sh -c <that file>`
//! (`runscript/runshellscript.go`: `shellCommand = "sh"`, `shellArgs =
//! []string{"-c"}`; `runscript.go` `runCommands` appends the path) as the
//! leader of its own process group (`executers_unix.go` `prepareProcess`:
//! `Setpgid: true`), with the agent's environment plus the `SSM_<Name>`
//! parameters and `AWS_SSM_INSTANCE_ID` / `AWS_SSM_REGION_NAME`
//! (`executers.go` `prepareEnvironment`). Cancel and timeout are a SIGKILL
//! of that group and nothing else (`executers_unix.go` `killProcess`).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Which shells stand in for the host's `/bin/sh` and `bash`.
#[derive(Clone, Debug)]
pub struct Shells {
    pub sh: PathBuf,
    pub bash: PathBuf,
}

impl Shells {
    pub fn same(shell: PathBuf) -> Shells {
        Shells {
            sh: shell.clone(),
            bash: shell,
        }
    }

    /// The machine's own: dash as `sh`, bash as `bash` (Debian, Ubuntu).
    pub fn debian() -> Shells {
        Shells {
            sh: PathBuf::from("/bin/dash"),
            bash: PathBuf::from("/bin/bash"),
        }
    }
}

/// One agent-style run of the embedded script: its directory holds
/// `bin/{sh,bash}`, `_script.sh` and the working directory `out/`.
pub struct AgentRun {
    dir: tempfile::TempDir,
    pub env: BTreeMap<String, String>,
    shells: Shells,
}

impl AgentRun {
    /// Local mode (no upload) recording `pids` for `duration` seconds.
    pub fn local(shells: Shells, pids: &[u32], duration: u32) -> AgentRun {
        let dir = tempfile::Builder::new()
            .prefix("flamefire-agent-")
            .tempdir()
            .unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(&shells.sh, bin.join("sh")).unwrap();
        std::os::unix::fs::symlink(&shells.bash, bin.join("bash")).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let script = dir.path().join("_script.sh");
        std::fs::write(&script, &flamefire::document::embedded().unwrap().script).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let pids = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("Duration", duration.to_string()),
            ("Frequency", "99".into()),
            ("Pids", pids),
            ("ProcessName", "node".into()),
            ("StartAt", "0".into()),
            ("RunId", "agent-test".into()),
            ("UploadUrl", String::new()),
            ("UploadKeyPrefix", String::new()),
            ("UploadPolicy", String::new()),
            ("UploadCredential", String::new()),
            ("UploadDate", String::new()),
            ("UploadSignature", String::new()),
            ("UploadSecurityToken", String::new()),
            ("NoInstall", "false".into()),
            ("Probe", "false".into()),
        ] {
            env.insert(format!("SSM_{k}"), v);
        }
        // Each run is its own "host" (the script keeps one run per instance
        // id at a time), so that parallel tests do not queue on one lock.
        env.insert("AWS_SSM_INSTANCE_ID".into(), fake_instance_id());
        AgentRun { dir, env, shells }
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// `sh -c _script.sh` in its own process group, `bin/` first in PATH
    /// (so `bash` after the script's re-exec is the chosen bash too).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(self.bin().join("sh"));
        cmd.arg("-c")
            .arg(self.dir.path().join("_script.sh"))
            .current_dir(self.out())
            .env_clear()
            .env(
                "PATH",
                format!(
                    "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    self.bin().display()
                ),
            )
            .env("HOME", "/root")
            // Local mode's output directory: the agent passes no --out, and
            // the default (/var/lib/flamefire/runs) is tested on its own.
            .env("FLAMEFIRE_TEST_OUT", self.out())
            .envs(&self.env)
            .stdin(Stdio::null())
            .process_group(0);
        cmd
    }

    pub fn run(&self) -> Output {
        self.command().output().unwrap_or_else(|e| {
            panic!("cannot start {:?} as sh: {e}", self.shells.sh);
        })
    }

    pub fn spawn(&self) -> Child {
        self.command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn meta(&self) -> serde_json::Value {
        let path = self.out().join("meta.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} not delivered: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("meta.json: {e}: {text}"))
    }

    /// The delivered meta.json's entry for target `pid`.
    pub fn target(&self, pid: u32) -> serde_json::Value {
        let meta = self.meta();
        meta["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["pid"] == pid)
            .cloned()
            .unwrap_or_else(|| panic!("pid {pid} is not a target in meta.json: {meta}"))
    }

    /// The delivered `perf script` text.
    pub fn stacks(&self) -> String {
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(self.out().join("stacks.gz"))
            .output()
            .unwrap();
        assert!(out.status.success(), "stacks.gz is not gzip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `i-` and 17 hex digits, different for every call.
pub fn fake_instance_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "i-{:07x}{:06x}{:04x}",
        std::process::id() & 0xfff_ffff,
        nanos >> 8 & 0xff_ffff,
        NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}

/// Describes a finished run for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every live process whose process group is `pgid`.
pub fn group_members(pgid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        // fields[0] is state (field 3), fields[2] is pgrp (field 5).
        if fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) && fields[0] != "Z" {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            out.push((pid, comm.trim().to_string()));
        }
    }
    out
}

/// Every process whose parent chain leads to `root` (root included).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        all.extend(crate::support::children(all[i]));
        i += 1;
    }
    all
}

/// Owner (uid) of a path, without following a symlink.
pub fn owner(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| m.uid())
}
