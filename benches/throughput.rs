//! End-to-end speed of the command a user runs, `flamefire render FILE
//! --out DIR` (collapse, SVG, .folded and report.html with its heat map),
//! against the inferno CLI pipeline (`inferno-collapse-perf --jit --kernel
//! FILE | inferno-flamegraph`) on the same inputs in the same run, plus the
//! library alone and peak memory against the largest input (issue 10).
//!
//! Cases, run in rounds in which the contenders take turns (each round
//! starts with another one), so that load from elsewhere hits them alike;
//! the figure is the median over rounds of the per-round ratio:
//! * one ~50 MB input: the command vs the CLI pipeline;
//! * 20 inputs of ~5 MB: one `flamefire render` of all 20 vs the CLI
//!   pipeline file by file;
//! * for reference, the library (`stacks::file` + `render::svg`) on the
//!   50 MB input.
//!
//! Peak memory is the command's maximum RSS (GNU time), over the largest input.
//!
//! Inputs are built from a real capture in `tests/data/captures` by repeating
//! its events with shifted timestamps and pids, into `target/bench-data`
//! (never committed). Run it through `scripts/bench.sh`, which installs the
//! inferno CLI and GNU time when they are missing.
//!
//! Environment: `FLAMEFIRE_BENCH_CAPTURE` picks the source capture,
//! `FLAMEFIRE_BENCH_RUNS` the rounds (default 7), and
//! `FLAMEFIRE_BENCH_BASELINE` another `flamefire` binary (say, built from
//! main before a change) that takes its turn in the same rounds, so that a
//! change's effect is a ratio measured under the same load.

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flamefire::render::{self, Labels};
use flamefire::stacks;

const MB: f64 = 1_000_000.0;
const BIG_BYTES: usize = 50_000_000;
const PART_BYTES: usize = 5_000_000;
const PARTS: usize = 20;
const FLAMEFIRE: &str = env!("CARGO_BIN_EXE_flamefire");

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("target/bench-data");
    let out = data.join("out");
    fs::create_dir_all(&out).unwrap();
    require_tools();

    let source = source_capture(root);
    let text = read_text(&source);
    let big = data.join("big.perf");
    build_input(&text, BIG_BYTES, 0, &big);
    let parts: Vec<PathBuf> = (0..PARTS)
        .map(|i| {
            let path = data.join(format!("part-{i:02}.perf"));
            build_input(&text, PART_BYTES, i + 1, &path);
            path
        })
        .collect();
    let big_bytes = size(&big);
    let parts_bytes: u64 = parts.iter().map(|p| size(p)).sum();
    let largest_part = parts.iter().map(|p| size(p)).max().unwrap();
    let runs: usize = std::env::var("FLAMEFIRE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "source: {} ({} events), {cores} cores, {runs} rounds, load average {}",
        source.display(),
        text.matches("\n\n").count(),
        load_average()
    );

    let baseline = std::env::var_os("FLAMEFIRE_BENCH_BASELINE").map(PathBuf::from);
    let ff_big_dir = out.join("ff-big");
    let base_big_dir = out.join("base-big");
    let mut big_cases: Vec<Case> = vec![
        (
            "flamefire render (command)",
            Box::new(|| command_render(std::slice::from_ref(&big), &ff_big_dir)),
        ),
        (
            "inferno CLI pipeline",
            Box::new(|| cli_pipeline(&big, &out.join("cli-big.svg"))),
        ),
        (
            "library: stacks::file + render::svg",
            Box::new(|| {
                let folded = stacks::file(&big).unwrap();
                render::svg(&folded, &labels("big"), &out.join("lib-big.svg")).unwrap();
            }),
        ),
    ];
    if let Some(baseline) = &baseline {
        big_cases.push((
            "baseline flamefire render (command)",
            Box::new(|| run_render(baseline, std::slice::from_ref(&big), &base_big_dir)),
        ));
    }
    let mut big_times = rounds(runs, &mut big_cases).into_iter();
    let (ff_big, cli_big, lib_big) = (
        big_times.next().unwrap(),
        big_times.next().unwrap(),
        big_times.next().unwrap(),
    );
    let base_big = big_times.next();

    let ff_parts_dir = out.join("ff-parts");
    let base_parts_dir = out.join("base-parts");
    let mut many_cases: Vec<Case> = vec![
        (
            "flamefire render 20 files",
            Box::new(|| command_render(&parts, &ff_parts_dir)),
        ),
        (
            "inferno CLI file by file",
            Box::new(|| {
                for (i, part) in parts.iter().enumerate() {
                    cli_pipeline(part, &out.join(format!("cli-part-{i:02}.svg")));
                }
            }),
        ),
    ];
    if let Some(baseline) = &baseline {
        many_cases.push((
            "baseline flamefire render 20 files",
            Box::new(|| run_render(baseline, &parts, &base_parts_dir)),
        ));
    }
    let mut many_times = rounds(runs, &mut many_cases).into_iter();
    let (ff_many, cli_many) = (many_times.next().unwrap(), many_times.next().unwrap());
    let base_many = many_times.next();

    let peak_big = command_peak(std::slice::from_ref(&big), &out.join("peak-big"));
    let peak_many = command_peak(&parts, &out.join("peak-parts"));

    println!();
    println!("load average {} at the end", load_average());
    println!(
        "{:<44} {:>20} {:>20} {:>16} {:>10}",
        "case (median over rounds)", "flamefire", "baseline", "ratio (wall)", "CPU ratio"
    );
    let row = |case: &str, bytes: u64, ours: &Timings, theirs: &Timings, target: &str| {
        let ratio = median(
            ours.wall
                .iter()
                .zip(&theirs.wall)
                .map(|(o, t)| t.as_secs_f64() / o.as_secs_f64())
                .collect(),
        );
        let cpu = median(
            ours.cpu
                .iter()
                .zip(&theirs.cpu)
                .map(|(o, t)| t.as_secs_f64() / o.as_secs_f64().max(1e-3))
                .collect(),
        );
        let (o, t) = (ours.median_wall(), theirs.median_wall());
        println!(
            "{case:<44} {:>6.3} s {:>6.1} MB/s {:>6.3} s {:>6.1} MB/s {:>9.2}× {:>9.2}×  {target}",
            o,
            bytes as f64 / MB / o,
            t,
            bytes as f64 / MB / t,
            ratio,
            cpu
        );
    };
    let part_mb = parts_bytes as f64 / MB / PARTS as f64;
    row(
        &format!(
            "1 × {:.1} MB: command vs inferno CLI",
            big_bytes as f64 / MB
        ),
        big_bytes,
        &ff_big,
        &cli_big,
        "(target ≥ 1.5×)",
    );
    row(
        &format!("{PARTS} × {part_mb:.1} MB: command vs CLI file by file"),
        parts_bytes,
        &ff_many,
        &cli_many,
        "(target ≥ 1.6×)",
    );
    row(
        &format!(
            "1 × {:.1} MB: library vs inferno CLI",
            big_bytes as f64 / MB
        ),
        big_bytes,
        &lib_big,
        &cli_big,
        "(for reference)",
    );
    if let (Some(base_big), Some(base_many)) = (&base_big, &base_many) {
        row(
            &format!(
                "1 × {:.1} MB: command vs baseline binary",
                big_bytes as f64 / MB
            ),
            big_bytes,
            &ff_big,
            base_big,
            "(≥ 1.0×: not slower)",
        );
        row(
            &format!("{PARTS} × {part_mb:.1} MB: command vs baseline binary"),
            parts_bytes,
            &ff_many,
            base_many,
            "(≥ 1.0×: not slower)",
        );
        row(
            &format!(
                "1 × {:.1} MB: baseline binary vs inferno CLI",
                big_bytes as f64 / MB
            ),
            big_bytes,
            base_big,
            &cli_big,
            "(for reference)",
        );
        row(
            &format!("{PARTS} × {part_mb:.1} MB: baseline binary vs CLI file by file"),
            parts_bytes,
            base_many,
            &cli_many,
            "(for reference)",
        );
    }
    println!();
    let show = |label: String, peak: Option<u64>, input: u64| match peak {
        Some(peak) => println!(
            "{label:<44} {:>9.1} MB {:>7.2}× the largest input  (target < 2×)",
            peak as f64 / MB,
            peak as f64 / input as f64
        ),
        None => println!("{label:<44} n/a (no GNU time: scripts/bench.sh installs it)"),
    };
    show(
        format!("peak RSS, render 1 × {:.1} MB", big_bytes as f64 / MB),
        peak_big,
        big_bytes,
    );
    show(
        format!(
            "peak RSS, render {PARTS} × {:.1} MB",
            largest_part as f64 / MB
        ),
        peak_many,
        largest_part,
    );
}

/// `flamefire render FILES --out DIR`, as a user runs it.
fn command_render(inputs: &[PathBuf], out: &Path) {
    run_render(Path::new(FLAMEFIRE), inputs, out);
}

/// `BINARY render FILES --out DIR`, for this build or a baseline one.
fn run_render(binary: &Path, inputs: &[PathBuf], out: &Path) {
    let status = Command::new(binary)
        .args(["--quiet", "render", "--out"])
        .arg(out)
        .args(inputs)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "flamefire render failed");
}

/// Peak RSS of the command, through GNU time.
fn command_peak(inputs: &[PathBuf], out: &Path) -> Option<u64> {
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", FLAMEFIRE, "--quiet", "render", "--out"])
        .arg(out)
        .args(inputs)
        .stdout(Stdio::null())
        .output()
        .ok()?;
    let stderr = String::from_utf8(output.stderr).ok()?;
    let kib: u64 = stderr.lines().last()?.trim().parse().ok()?;
    Some(kib * 1024)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn labels(name: &str) -> Labels {
    Labels {
        title: format!("bench {name}"),
        subtitle: String::new(),
    }
}

/// A named piece of work to time.
type Case<'a> = (&'a str, Box<dyn FnMut() + 'a>);

/// Wall-clock and CPU time (all threads and child processes) of each round.
#[derive(Clone, Default)]
struct Timings {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Timings {
    fn median_wall(&self) -> f64 {
        median(self.wall.iter().map(Duration::as_secs_f64).collect())
    }
}

/// Runs every case once per round, `runs` rounds, each round starting with
/// another case, and keeps every round's times.
fn rounds(runs: usize, cases: &mut [Case<'_>]) -> Vec<Timings> {
    let n = cases.len();
    let mut all = vec![Timings::default(); n];
    for round in 1..=runs.max(1) {
        for i in (0..n).map(|k| (k + round) % n) {
            let (name, case) = &mut cases[i];
            let (start, cpu_start) = (Instant::now(), cpu_time());
            case();
            let (wall, cpu) = (start.elapsed(), cpu_time() - cpu_start);
            eprintln!(
                "round {round}: {name:<40} {:>7.3} s wall {:>7.3} s CPU",
                wall.as_secs_f64(),
                cpu.as_secs_f64()
            );
            all[i].wall.push(wall);
            all[i].cpu.push(cpu);
        }
    }
    all
}

/// CPU time of this process and of its waited-for children, from
/// `/proc/self/stat` (utime, stime, cutime, cstime, in clock ticks of
/// 10 ms: the `USER_HZ` of Linux on every common architecture).
fn cpu_time() -> Duration {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    // fields after the parenthesised command name, which may hold spaces
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11..15]
        .iter()
        .map(|f| f.parse::<u64>().unwrap())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn size(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// The same options as flamefire: JIT and kernel annotations, JS palette,
/// colours by name hash.
fn cli_pipeline(input: &Path, svg: &Path) {
    let mut collapse = Command::new("inferno-collapse-perf")
        .args(["--jit", "--kernel"])
        .arg(input)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = Command::new("inferno-flamegraph")
        .args(["--colors", "js", "--hash", "--countname", "samples"])
        .stdin(collapse.stdout.take().unwrap())
        .stdout(fs::File::create(svg).unwrap())
        .status()
        .unwrap();
    assert!(status.success() && collapse.wait().unwrap().success());
}

fn require_tools() {
    for tool in ["inferno-collapse-perf", "inferno-flamegraph"] {
        let found = Command::new(tool)
            .arg("--help")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{tool} is not installed: run scripts/bench.sh (it runs `cargo install inferno --locked`)"
        );
    }
}

/// The largest capture, or `FLAMEFIRE_BENCH_CAPTURE`.
fn source_capture(root: &Path) -> PathBuf {
    if let Some(path) = std::env::var_os("FLAMEFIRE_BENCH_CAPTURE") {
        return PathBuf::from(path);
    }
    let dir = root.join("tests/data/captures");
    fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.to_string_lossy();
            name.ends_with(".perf") || name.ends_with(".perf.gz")
        })
        .max_by_key(|path| size(path))
        .unwrap_or_else(|| panic!("no captures in {}", dir.display()))
}

fn read_text(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        text
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

/// Writes at least `bytes` of `perf script` text to `out` by repeating the
/// events of `text`; copy `k` has its timestamps moved past copy `k - 1`
/// and its pids moved by `seed * 7 + k`, as a longer recording would.
fn build_input(text: &str, bytes: usize, seed: usize, out: &Path) {
    let events: Vec<&str> = text
        .split("\n\n")
        .map(|e| e.trim_matches('\n'))
        .filter(|e| !e.is_empty() && !e.starts_with('#'))
        .collect();
    let times: Vec<f64> = events
        .iter()
        .filter_map(|e| header(e).map(|h| h.2))
        .collect();
    let first = times.iter().copied().fold(f64::MAX, f64::min);
    let last = times.iter().copied().fold(f64::MIN, f64::max);
    let span = (last - first).max(0.0) + 1.0;

    let mut writer = BufWriter::new(fs::File::create(out).unwrap());
    let mut written = 0;
    let mut copy = 0;
    'copies: loop {
        for event in &events {
            let (head, frames) = event.split_once('\n').unwrap_or((event, ""));
            let line = match header(head) {
                Some((pid_at, pid, time, time_at, time_len)) => {
                    let pid = pid + (seed * 7 + copy) as u64;
                    let time = time + span * copy as f64;
                    let pid_len = head[pid_at..].find([' ', '/']).unwrap();
                    format!(
                        "{}{pid}{}{time:.6}{}",
                        &head[..pid_at],
                        &head[pid_at + pid_len..time_at],
                        &head[time_at + time_len..]
                    )
                }
                None => head.to_string(),
            };
            writeln!(writer, "{line}\n{frames}\n").unwrap();
            written += line.len() + frames.len() + 3;
            if written >= bytes {
                break 'copies;
            }
        }
        copy += 1;
    }
    writer.flush().unwrap();
}

/// `comm pid[/tid] [cpu] time: …` → (pid offset, pid, time, time offset, time length).
fn header(line: &str) -> Option<(usize, u64, f64, usize, usize)> {
    let colon = line.find(": ")?;
    let before = &line[..colon];
    let time_at = before.rfind(' ')? + 1;
    let time: f64 = before[time_at..].parse().ok()?;
    // the pid is the first all-digit word (optionally `pid/tid`)
    let mut at = 0;
    for word in line[..time_at].split(' ') {
        let digits = word.split('/').next().unwrap_or("");
        if at > 0 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Some((at, digits.parse().ok()?, time, time_at, colon - time_at));
        }
        at += word.len() + 1;
    }
    None
}
