//! A host on fire still gives its flamegraph, or says why not (issue 18
//! §1, §5, §6): long-lived perf maps, thousands of processes, files a
//! target swaps under the script, a lock another user holds, and perf's
//! own words. Every run is the embedded script started as the SSM agent
//! starts it (`AgentRun`), with real perf and real Node.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::agent::{AgentRun, Shells, describe};
use crate::support::{Guard, NodeApp, mkfifo, require, stderr, wait_or_kill};

/// A busy Node process that is not started with a perf map option: its
/// `/tmp/perf-PID.map` is the one the test writes.
fn busy_node() -> Guard {
    require("node");
    let guard = Guard::spawn(
        Command::new("node")
            .args([
                "-e",
                "function notATarget(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i); return s; }\
                 setInterval(() => notATarget(3e6), 1);",
            ])
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null()),
    );
    std::thread::sleep(Duration::from_millis(300));
    guard
}

/// Appends `lines` well-formed entries (`START SIZE name`, as Node writes
/// them) to a perf map, above any address Node uses.
fn append_map_lines(map: &Path, lines: usize) {
    let mut file = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(map)
            .unwrap_or_else(|e| panic!("open {}: {e}", map.display())),
    );
    for i in 0..lines {
        writeln!(
            file,
            "{:x} 10 LazyCompile:~flamefireFiller{i} /srv/app/filler.js:1",
            0x7e00_0000_0000u64 + (i as u64) * 16
        )
        .unwrap();
    }
    file.flush().unwrap();
}

fn line_count(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Regression (issue 18 §1): a perf map over 100,000 lines (a
/// --perf-basic-prof Node process that has run for days) made
/// `head -c | head -n 100000` die of SIGPIPE under pipefail: exit 141, no
/// word, recording deleted. Here a target's map and a busy non-target's
/// map both have `lines` lines more.
fn long_maps_on_a_target_and_a_non_target(lines: usize) {
    require("perf");
    let _maps = crate::support::live_maps_lock();
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let worker = *app.pids.last().unwrap();
    let target_map = PathBuf::from(format!("/tmp/perf-{worker}.map"));
    append_map_lines(&target_map, lines);
    let mut other = busy_node();
    let other_map = PathBuf::from(format!("/tmp/perf-{}.map", other.pid()));
    other.planted.push(other_map.clone());
    append_map_lines(&other_map, lines);
    assert!(line_count(&target_map) > lines && line_count(&other_map) >= lines);

    let run = AgentRun::local(Shells::debian(), &app.pids, 1);
    let out = run.run();
    assert!(out.status.success(), "{lines} lines: {}", describe(&out));
    let meta = run.meta();
    let target = run.target(worker);
    assert_eq!(target["map"], "ok", "{meta}");
    assert!(
        target["map_bytes"].as_u64().unwrap() > (lines as u64) * 40,
        "the long map was the one looked at: {meta}"
    );
    assert_eq!(meta["targets"].as_array().unwrap().len(), app.pids.len());
    assert!(
        !meta["targets"]
            .to_string()
            .contains(&other.pid().to_string()),
        "the busy node is not a target: {meta}"
    );
    let stacks = run.stacks();
    assert!(
        stacks.contains("tokenizeHtml"),
        "{lines} lines: the target's JIT frames are named through its long map"
    );
    assert!(
        !stderr(&out).contains("flamefire: error"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_perf_map_of_100k_lines_does_not_end_the_run() {
    long_maps_on_a_target_and_a_non_target(100_001);
}

#[test]
fn a_perf_map_of_1m_lines_does_not_end_the_run() {
    long_maps_on_a_target_and_a_non_target(1_000_000);
}

/// A command directory put first in PATH, with one tool replaced.
fn stand_in(run: &AgentRun, tool: &str, body: &str) {
    let path = run.bin().join(tool);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// Regression (issue 18 §1): an unexpected failure (errexit) ended the
/// script with no line at all. Here `uname` fails, as a broken coreutils
/// or a seccomp profile could make it: the script must end with exit 1
/// (the header's "unexpected failure") and a `flamefire: error:` line that
/// names the function, the command and its exit code.
#[test]
fn an_unexpected_failure_is_named_in_an_error_line() {
    let app = NodeApp::start("healthy", 1, &[]);
    let run = AgentRun::local(Shells::debian(), &app.pids, 1);
    stand_in(&run, "uname", "exit 3");
    let out = run.run();
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let line = said
        .lines()
        .find(|l| l.starts_with("flamefire: error:"))
        .unwrap_or_else(|| panic!("no error line: {}", describe(&out)));
    assert!(
        line.contains("unexpected failure")
            && line.contains("read_identity")
            && line.contains("uname")
            && line.contains("exited 3"),
        "{line}"
    );
}

/// Regression (issue 18 §6): bash printed "<line>: PID Killed ..." for a
/// child killed by a signal (the OOM killer; our own time limits), before
/// the error line and inside the 2,500 characters the agent keeps. Here
/// perf record is SIGKILLed while it records.
#[test]
fn a_killed_child_gives_the_error_line_and_no_job_notice() {
    require("perf");
    let app = NodeApp::start("healthy", 1, &["--perf-basic-prof"]);
    let run = AgentRun::local(Shells::debian(), &app.pids, 30);
    let child = run.spawn();
    let started = Instant::now();
    let perf = loop {
        let found = crate::agent::descendants(child.id()).into_iter().find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).nth(1) == Some(b"record"))
        });
        if let Some(p) = found {
            break p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "perf record never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(perf as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = wait_or_kill(child, Duration::from_secs(120), "perf record killed");
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{}", describe(&out));
    assert!(!said.contains("Killed"), "a job notice: {said}");
    let first = said
        .lines()
        .find(|l| l.contains("error"))
        .unwrap_or_default();
    assert!(
        first.starts_with("flamefire: error: perf record failed (exit 137)"),
        "{said}"
    );
}

/// The run under `strace -f`; returns its output and how many processes
/// the script and its children started (clone, fork, vfork; threads are
/// not processes) before `perf record` was started: that is discovery and
/// preparation, whose work must not grow with the host's processes. (Once
/// perf records, the script polls 5 times a second until perf script ends,
/// which on a busy machine takes a varying time.)
fn processes_started_before_recording(run: &AgentRun) -> (Output, usize) {
    require("strace");
    let inner = run.command();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("strace");
    cmd.args([
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-e",
        "trace=fork,vfork,clone,clone3,execve",
        "-o",
    ])
    .arg(log.path())
    .arg(inner.get_program())
    .args(inner.get_args())
    .current_dir(inner.get_current_dir().unwrap())
    .env_clear()
    .stdin(Stdio::null())
    .process_group(0);
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let out = cmd
        .output()
        .expect("strace runs (scripts/bootstrap.sh --for-tests installs it)");
    let text = std::fs::read_to_string(log.path()).unwrap();
    let mut n = 0;
    for line in text.lines() {
        if line.contains("execve(") && line.contains("\"record\"") {
            return (out, n);
        }
        let creates = [" clone(", " clone3(", " fork(", " vfork("]
            .iter()
            .any(|c| line.contains(c));
        if creates && !line.contains("CLONE_THREAD") {
            n += 1;
        }
    }
    panic!("perf record was never started:\n{}", describe(&out));
}

/// Processes that only wait (python's fork: a few pages each), killed on drop.
struct Crowd {
    _group: Guard,
}

impl Crowd {
    fn of(count: usize) -> Crowd {
        require("python3");
        let mut guard = Guard::spawn(
            Command::new("python3")
                .args([
                    "-c",
                    &format!(
                        "import os, signal, sys\n\
                 for _ in range({count}):\n    \
                     if os.fork() == 0:\n        signal.pause()\n        os._exit(0)\n\
                 print('ready', flush=True)\n\
                 signal.pause()\n"
                    ),
                ])
                .stdout(Stdio::piped()),
        );
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(guard.child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the crowd of {count} processes did not start"
        );
        Crowd { _group: guard }
    }
}

/// Regression (issue 18 §5): target discovery ran a readlink per process:
/// 15.8 s for 2,079 processes, far past the fleet's StartAt. It must be one
/// pass over /proc: 2,000 more processes on the host must not start 2,000
/// more processes in the script. Counted with strace (events, not time):
/// the same run with and without the crowd.
#[test]
fn discovery_does_not_start_a_process_per_process_of_the_host() {
    require("perf");
    // The target: a copy of sleep under a name nothing else on this
    // machine has, found with Pids=all (the discovery path).
    let dir = tempfile::tempdir().unwrap();
    let name = format!("ffdisc{}", std::process::id());
    let exe = dir.path().join(&name);
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let target = Guard::spawn(Command::new(&exe).arg("600"));
    let run_once = || {
        let mut run = AgentRun::local(Shells::debian(), &[], 1);
        run.env.insert("SSM_Pids".into(), "all".into());
        run.env.insert("SSM_ProcessName".into(), name.clone());
        let (out, n) = processes_started_before_recording(&run);
        assert!(out.status.success(), "{}", describe(&out));
        let meta = run.meta();
        assert_eq!(
            meta["targets"].as_array().unwrap().len(),
            1,
            "only the {name} process: {meta}"
        );
        assert_eq!(meta["targets"][0]["pid"], target.pid(), "{meta}");
        n
    };
    let quiet = run_once();
    let crowd = Crowd::of(2000);
    let crowded = run_once();
    drop(crowd);
    // The regression forked once per process (+2,000 here). The margin
    // is for the wait loops, whose forks follow the wall clock: on a busy
    // machine the crowded run has counted up to +160 of them.
    assert!(
        crowded < quiet + 500,
        "with 2,000 more processes on the host the script started {crowded} processes before recording, against {quiet} without"
    );
}

/// A perf map that flips between a regular file and a FIFO (rename(2), as
/// a target may do at any moment). Regression (issue 18 §5): a map that was
/// a file when screened and a FIFO when read hung the script in `head`
/// until the document's timeout.
struct FlippingMaps {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    maps: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl FlippingMaps {
    fn start(pids: &[u32]) -> FlippingMaps {
        use std::os::unix::fs::chown;
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let maps: Vec<PathBuf> = pids
            .iter()
            .map(|p| PathBuf::from(format!("/tmp/perf-{p}.map")))
            .collect();
        let mut pairs = Vec::new();
        for (i, map) in maps.iter().enumerate() {
            let file = dir.path().join(format!("file{i}"));
            let fifo = dir.path().join(format!("fifo{i}"));
            std::fs::write(&file, "7e0000000000 10 LazyCompile:~flipped /x.js:1\n").unwrap();
            mkfifo(&fifo);
            // Not root's (perf 6.1 opens a map whoever owns it: the script
            // hides a FIFO map from perf script, screen_host_maps).
            for p in [&file, &fifo] {
                chown(p, Some(65534), Some(65534)).unwrap();
            }
            // A map left by an earlier process with this pid (a Node killed
            // with SIGKILL keeps its /tmp/perf-PID.map) is stale: ours wins.
            let _ = std::fs::remove_file(map);
            std::fs::hard_link(&file, map).unwrap();
            pairs.push((file, fifo, map.clone()));
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let tmp = dir.path().to_path_buf();
        let thread = std::thread::spawn(move || {
            let staged = tmp.join("staged");
            let put = |src: &Path, dst: &Path| {
                let _ = std::fs::remove_file(&staged);
                if std::fs::hard_link(src, &staged).is_ok() {
                    let _ = std::fs::rename(&staged, dst);
                }
            };
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for (_, fifo, map) in &pairs {
                    put(fifo, map);
                }
                std::thread::sleep(Duration::from_micros(300));
                for (file, _, map) in &pairs {
                    put(file, map);
                }
                std::thread::sleep(Duration::from_micros(900));
            }
        });
        FlippingMaps {
            stop,
            thread: Some(thread),
            maps,
            _dir: dir,
        }
    }
}

impl Drop for FlippingMaps {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for map in &self.maps {
            let _ = std::fs::remove_file(map);
        }
    }
}

#[test]
fn perf_maps_swapped_for_fifos_while_read_never_hang_the_script() {
    require("perf");
    // 60 targets (Pids takes 64) whose maps flip: each has about one chance
    // in eight to be read while a FIFO, so today's script hangs on one of
    // them nearly always (all pass: 0.875^60 < 0.1%).
    let sleepers: Vec<Guard> = (0..60)
        .map(|_| Guard::spawn(Command::new("sleep").arg("600")))
        .collect();
    let pids: Vec<u32> = sleepers.iter().map(Guard::pid).collect();
    // A FIFO map that stays one: perf script runs with it hidden.
    let mut fifo_owner = Guard::spawn(Command::new("sleep").arg("600"));
    let fifo = PathBuf::from(format!("/tmp/perf-{}.map", fifo_owner.pid()));
    mkfifo(&fifo);
    std::os::unix::fs::chown(&fifo, Some(65534), Some(65534)).unwrap();
    fifo_owner.planted.push(fifo);
    let _flipping = FlippingMaps::start(&pids);
    let run = AgentRun::local(Shells::debian(), &pids, 1);
    // Safety net only: past the script's own limits (perf script <= 300 s,
    // which on a busy machine at nice 19 it may need).
    let out = wait_or_kill(run.spawn(), Duration::from_secs(480), "flipping maps");
    // The run may deliver (maps that were FIFOs are left out, warned) or
    // fail saying which map changed; either way it has ended and spoken.
    assert!(
        out.status.success() || stderr(&out).contains("flamefire: error:"),
        "{}",
        describe(&out)
    );
}

/// A JIT process that is not a target, in another mount namespace (a root
/// container, a `PrivateTmp=yes` service): `perf script` resolves the leaf
/// frames of every sampled process before it filters by pid, and for this
/// one it enters the namespace and opens `/tmp/perf-NSPID.map` there.
/// Regression (issue 18 §5): a FIFO there blocked `perf script` until its
/// time limit, and the host failed, or delivered nothing, saying "time
/// limit". The map is screened: the run delivers the target's stacks and its
/// warning names the map. On the host too, a busy non-target's FIFO map owned
/// by nobody: perf 6.1 opens it, `--force` or not.
#[test]
fn a_fifo_map_in_another_mount_namespace_neither_hangs_nor_is_read() {
    require("perf");
    require("unshare");
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let mut host_other = busy_node();
    let host_fifo = PathBuf::from(format!("/tmp/perf-{}.map", host_other.pid()));
    let _ = std::fs::remove_file(&host_fifo);
    mkfifo(&host_fifo);
    std::os::unix::fs::chown(&host_fifo, Some(65534), Some(65534)).unwrap();
    host_other.planted.push(host_fifo);
    // The "container": Node as pid 1 of its own pid namespace, with its
    // own /tmp, busy, so that it has samples in anonymous (JIT) memory.
    let container = Guard::spawn(
        Command::new("unshare")
            .args(["--mount", "--pid", "--fork", "--propagation", "private"])
            .args(["sh", "-c", "mount -t tmpfs flamefire /tmp && exec node --perf-basic-prof -e \"$0\""])
            .arg(
                "function inTheContainer(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i); return s; }\
                 setInterval(() => inTheContainer(3e6), 1);",
            )
            .stdout(Stdio::null()),
    );
    let started = Instant::now();
    let (node, map) = loop {
        let found = crate::support::children(container.pid())
            .into_iter()
            .map(|pid| {
                (
                    pid,
                    PathBuf::from(format!("/proc/{pid}/root/tmp/perf-1.map")),
                )
            })
            .find(|(_, map)| std::fs::metadata(map).is_ok_and(|m| m.len() > 0));
        if let Some(found) = found {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the namespaced node wrote no /tmp/perf-1.map"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Its map becomes a FIFO (Node keeps writing to the unlinked file).
    std::fs::remove_file(&map).unwrap();
    mkfifo(&map);
    let run = AgentRun::local(Shells::debian(), &app.pids, 2);
    // Safety net only: past perf script's own time limit.
    let out = wait_or_kill(run.spawn(), Duration::from_secs(480), "namespaced FIFO map");
    assert!(out.status.success(), "{}", describe(&out));
    let meta = run.meta();
    assert_eq!(meta["partial"], false, "{meta}");
    assert!(run.stacks().contains("tokenizeHtml"), "{meta}");
    let named = format!("/proc/{node}/root/tmp/perf-1.map");
    assert!(
        meta["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(&named)),
        "no warning names {named}: {meta}"
    );
    // What kept perf script from the map stayed in perf script's own mount
    // namespace: the host still sees the process and its FIFO.
    assert!(std::fs::metadata(format!("/proc/{node}/status")).is_ok());
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&map)
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

/// Regression (issue 18 §5): the lock file was in world-writable
/// /run/lock: any local user could create it and hold it, and every run
/// waited 360 s, then failed blaming "another flamefire run".
#[test]
fn a_lock_held_by_another_user_in_run_lock_does_not_make_the_run_wait() {
    require("perf");
    require("flock");
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let run = AgentRun::local(Shells::debian(), &app.pids, 1);
    let instance = run.env["AWS_SSM_INSTANCE_ID"].clone();
    let old = PathBuf::from(format!("/run/lock/flamefire-{instance}.lock"));
    // nobody creates the old lock file and holds it.
    let mut holder = Guard::spawn(
        Command::new("flock")
            .arg(&old)
            .args(["sleep", "600"])
            .uid(65534)
            .gid(65534),
    );
    holder.planted.push(old.clone());
    let started = Instant::now();
    while crate::agent::owner(&old) != Some(65534) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nobody could not create {}",
            old.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut child = run.spawn();
    // Read stderr as it comes: a "waiting" line fails the test at once.
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(err)) {
            let line = line.unwrap_or_default();
            if line.contains("another flamefire run") {
                return Err(line);
            }
            all.push_str(&line);
            all.push('\n');
        }
        Ok(all)
    });
    let said = loop {
        if reader.is_finished() {
            break reader.join().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = match said {
        Ok(s) => s,
        Err(line) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            panic!("the run waits for nobody's lock: {line}");
        }
    };
    let status = child.wait().unwrap();
    assert!(status.success(), "{said}");
    assert!(run.stacks().contains("tokenizeHtml"));
    let dir = Path::new("/run/flamefire");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(dir).unwrap();
    assert!(meta.is_dir() && meta.uid() == 0, "{}", dir.display());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
}

/// Regression (issue 18 §6): a refused perf_event_open showed only perf's
/// last line ("in /etc/sysctl.conf (e.g. kernel.perf_event_paranoid =
/// <setting>)"). Run as a user perf_event_paranoid 2 refuses: the error
/// line says what is wrong.
#[test]
fn a_refused_perf_event_open_says_what_is_wrong() {
    require("perf");
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap();
    assert!(
        paranoid.trim().parse::<i32>().unwrap() >= 2,
        "this test needs kernel.perf_event_paranoid >= 2 (Debian's default), not {paranoid}"
    );
    let node = busy_node();
    let run = AgentRun::local(Shells::debian(), &[node.pid()], 1);
    // Everything the agent-style run needs, readable and writable by nobody.
    let root = run.out().parent().unwrap().to_path_buf();
    assert!(
        Command::new("chown")
            .args(["-R", "-h", "65534:65534"])
            .arg(&root)
            .status()
            .unwrap()
            .success()
    );
    let mut cmd = run.command();
    cmd.uid(65534).gid(65534).env("HOME", "/nonexistent");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", describe(&out));
    let said = stderr(&out);
    let line = said
        .lines()
        .find(|l| l.starts_with("flamefire: error:"))
        .unwrap_or_default();
    assert!(
        line.contains("perf record failed")
            && line.contains(
                "Access to performance monitoring and observability operations is limited"
            ),
        "{said}"
    );
}

/// Debian's linux-perf-<ver> (buster, bullseye) installs /usr/bin/perf_<ver>,
/// and /usr/bin/perf fails unless <ver> is the running kernel's (issue 18
/// §6): that perf must be found too.
#[test]
fn debians_versioned_perf_is_found_when_perf_fails() {
    require("perf");
    let _only = crate::support::perf_stand_ins();
    let versioned = PathBuf::from(format!("/usr/bin/perf_0.0.{}", std::process::id()));
    std::fs::copy(which_perf(), &versioned).unwrap();
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _remove = Remove(versioned.clone());
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let mut run = AgentRun::local(Shells::debian(), &app.pids, 1);
    stand_in(
        &run,
        "perf",
        "echo \"E: linux-perf-$(uname -r | cut -d. -f1,2) is not installed.\" >&2\nexit 1",
    );
    run.env.insert("SSM_NoInstall".into(), "true".into());
    let out = run.run();
    assert!(out.status.success(), "{}", describe(&out));
    let meta = run.meta();
    assert_eq!(meta["perf_path"].as_str(), versioned.to_str(), "{meta}");
    assert!(run.stacks().contains("tokenizeHtml"));
}

fn which_perf() -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", "command -v perf"])
        .output()
        .unwrap();
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(path.is_file(), "perf is not installed: run scripts/test.sh");
    path
}

/// Decided in issue 18 §5: a package manager outlives a cancel, because a
/// SIGKILL in the middle of an rpm or dpkg transaction can leave the
/// package database to repair by hand. The agent's cancel is a SIGKILL of
/// the script's process group; the install must not be in it, and must run
/// to its end. perf does not work here (Ubuntu's failing wrapper), so the
/// script installs it with the first package manager in PATH: a `dnf` that
/// says when it starts and when it ends.
#[test]
fn a_package_manager_runs_to_its_end_after_a_cancel() {
    let _only = crate::support::perf_stand_ins();
    let marks = tempfile::tempdir().unwrap();
    let app = NodeApp::start("healthy", 1, &[]);
    let run = AgentRun::local(Shells::debian(), &app.pids, 1);
    stand_in(
        &run,
        "perf",
        "echo \"WARNING: perf not found for kernel $(uname -r)\" >&2\nexit 2",
    );
    let m = marks.path().display();
    stand_in(
        &run,
        "dnf",
        &format!(
            "cut -d' ' -f6 /proc/$$/stat > {m}/started.tmp && mv {m}/started.tmp {m}/started\n\
             sleep 2\necho done > {m}/done\nexit 1"
        ),
    );
    let mut child = run.spawn();
    let started = Instant::now();
    let session = loop {
        if let Ok(s) = std::fs::read_to_string(marks.path().join("started")) {
            break s.trim().parse::<i32>().unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the script ended ({status}) without installing: {}",
                describe(&child.wait_with_output().unwrap())
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the package manager never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    let ours = nix::unistd::getsid(None).unwrap().as_raw();
    assert_ne!(
        session, ours,
        "the package manager is in the session of the script it was started by"
    );
    // It ends by itself (2 s); a killed one never writes `done`.
    let waited = Instant::now();
    while !marks.path().join("done").exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the package manager was killed by the cancel"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 16 §3: run from the SSM console with `UploadUrl` empty, the real
/// agent's working directory is `/usr/bin`: local mode must not write there.
/// Without `--out` it writes under /var/lib/flamefire/runs/<UTC>-<RunId>/,
/// keeping the newest 10 runs.
#[test]
fn local_mode_under_the_agent_writes_to_its_own_bounded_place() {
    let app = NodeApp::start("sick", 1, &["--perf-basic-prof"]);
    let mut run = AgentRun::local(Shells::debian(), &app.pids, 1);
    let run_id = format!("cwd-test-{}", std::process::id());
    run.env.insert("SSM_RunId".into(), run_id.clone());
    let base = Path::new("/var/lib/flamefire/runs");
    std::fs::create_dir_all(base).unwrap();
    // Older runs than any real one: only the newest 10 in all may remain.
    for i in 0..12 {
        std::fs::create_dir_all(base.join(format!("19700101T0000{i:02}Z-old"))).unwrap();
    }
    let out = run
        .command()
        .env_remove("FLAMEFIRE_TEST_OUT")
        .env_remove("HOME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let written: Vec<_> = std::fs::read_dir(run.out()).unwrap().collect();
    assert!(
        written.is_empty(),
        "the working directory is left alone: {written:?}"
    );
    let runs: Vec<String> = std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let ours = runs
        .iter()
        .find(|n| n.ends_with(&format!("-{run_id}")))
        .unwrap_or_else(|| panic!("no run directory for {run_id} in {runs:?}"));
    assert!(base.join(ours).join("stacks.gz").is_file());
    assert!(base.join(ours).join("meta.json").is_file());
    assert!(runs.len() <= 10, "the newest 10 are kept: {runs:?}");
    assert!(
        !runs.iter().any(|n| n == "19700101T000000Z-old"),
        "{runs:?}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(base).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "root only");
    std::fs::remove_dir_all(base.join(ours)).unwrap();
    for n in runs.iter().filter(|n| n.starts_with("19700101T0000")) {
        let _ = std::fs::remove_dir_all(base.join(n));
    }
}
