//! The operator sees the host's real cause, even when the agent truncates
//! the output (iohandler.TruncateOutput keeps the start of each stream,
//! 2,500 characters in all; the emulator does the same).
//!
//! Regression (issue 8 §4): fourteen per-pid "no perf map" warnings came
//! before the fatal line, the agent cut it off, and the CLI's cause read
//! `---Error truncated----` or a warning. Now the warnings are one summary
//! line after the error line, and the CLI takes `flamefire: error:`.

use std::io::BufReader;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Emulator, endpoint, flamefire_process, require, wait_for_line};

/// Idle Node processes without --perf-basic-prof: each lacks a perf map.
struct Idle(Vec<Child>);

impl Idle {
    fn start(n: usize) -> Idle {
        require("node");
        let kids = (0..n)
            .map(|_| {
                Command::new("node")
                    .args(["-e", "setInterval(() => {}, 1000)"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .expect("node starts")
            })
            .collect::<Vec<Child>>();
        // Node never deletes its map: a pid reused from an earlier process run
        // with --perf-basic-prof would find that stale map and not be counted.
        for kid in &kids {
            let _ = std::fs::remove_file(format!("/tmp/perf-{}.map", kid.id()));
        }
        std::thread::sleep(Duration::from_millis(500));
        Idle(kids)
    }

    fn pid_args(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|c| ["--pid".to_string(), c.id().to_string()])
            .collect()
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Empties and deletes the bucket with boto3 from the emulator's venv (a
/// real, signing S3 client), so that the host's upload fails for real: S3
/// answers NoSuchBucket to the POST.
fn delete_bucket(bucket: &str) {
    let venv = std::env::var("FLAMEFIRE_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| crate::support::repo().join(".venv"));
    let python = venv.join("bin/python");
    let out = Command::new(&python)
        .args([
            "-c",
            "import boto3, sys\n\
             b = boto3.resource('s3', endpoint_url=sys.argv[1]).Bucket(sys.argv[2])\n\
             b.objects.all().delete()\n\
             b.delete()",
            &endpoint(),
            bucket,
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} is missing ({e}): scripts/test.sh creates the emulator's venv",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "could not delete bucket {bucket}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fourteen_pids_without_maps_and_a_failed_upload_give_the_upload_error_as_cause() {
    require("perf");
    let emu = Emulator::new();
    let idle = Idle::start(14);
    let ids = emu.seed(1, &[("flamefire-test:ssm", "online")]);
    let mut child = flamefire_process()
        .args([
            "ssm",
            &ids[0],
            "--bucket",
            &emu.bucket,
            "--document",
            &emu.document,
            "--duration",
            "6",
            "--json",
            "--out",
        ])
        .arg(tempfile::tempdir().unwrap().path())
        .args(idle.pid_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    wait_for_line(&mut stderr, "InProgress", Duration::from_secs(120));
    delete_bucket(&emu.bucket);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json: {e}: {}\n{rest}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let host = &report["hosts"][0];
    let cause = host["cause"].as_str().unwrap_or_default();
    assert!(
        cause.starts_with("flamefire: error: upload of stacks.gz"),
        "the cause is the script's error line, not {cause:?}\n{host}\n{rest}"
    );
    assert!(!cause.contains('\n'), "one line: {cause:?}");
    // The warnings arrived too, summed up: 14 pids in one line.
    let tail = host["output_tail"].as_str().unwrap_or_default();
    assert!(
        tail.contains("14/14 pids lack a perf map"),
        "one summary line for the 14 warnings: {tail}"
    );
}
