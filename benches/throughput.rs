//! Throughput of the collapse → render pipeline (`perf script` text → folded
//! → SVG), flamefire's library against the inferno CLI
//! (`inferno-collapse-perf | inferno-flamegraph`) on the same inputs in the
//! same run, plus peak memory against the largest input.
//!
//! Cases, each timed in rounds that take turns so that load from elsewhere
//! hits them alike (best round kept):
//! * one ~50 MB input: `collapse::file` + `render::svg` vs the CLI pipeline;
//! * 20 inputs of ~5 MB: `collapse::files` + `render::svg` each vs the CLI
//!   pipeline file by file, and vs `collapse::file` file by file.
//!
//! Each case reports wall-clock MB/s and CPU seconds (all threads and child
//! processes). On a machine shared with other jobs the wall clock depends on
//! the scheduler; the CPU ratio does not.
//!
//! Inputs are built from a real capture in `tests/data/captures` by repeating
//! its events with shifted timestamps and pids, into `target/bench-data`
//! (never committed). Run it through `scripts/bench.sh`, which installs the
//! inferno CLI when it is missing; `cargo bench --bench throughput` works
//! too once it is installed.
//!
//! Environment: `FLAMEFIRE_BENCH_CAPTURE` picks the source capture,
//! `FLAMEFIRE_BENCH_RUNS` the rounds (default 5).

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flamefire::collapse;
use flamefire::render::{self, Labels};

const MB: f64 = 1_000_000.0;
const BIG_BYTES: usize = 50_000_000;
const PART_BYTES: usize = 5_000_000;
const PARTS: usize = 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..]);
        return;
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("target/bench-data");
    let out = data.join("out");
    fs::create_dir_all(&out).unwrap();
    require_inferno_cli();

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
        .unwrap_or(5);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    println!(
        "source: {} ({} events), {cores} cores, best of {runs} rounds, load average {}",
        source.display(),
        text.matches("\n\n").count(),
        load_average()
    );

    // The cases take turns within each round, so that a burst of load from
    // elsewhere on the machine hits all of them alike; the best round counts.
    let mut big_cases: [Case; 2] = [
        (
            "flamefire",
            Box::new(|| {
                let folded = collapse::file(&big).unwrap();
                render::svg(&folded, &labels("big"), &out.join("ff-big.svg")).unwrap();
            }),
        ),
        (
            "inferno CLI",
            Box::new(|| cli_pipeline(&big, &out.join("cli-big.svg"))),
        ),
    ];
    let [ff_big, cli_big] = best_of_rounds(runs, &mut big_cases);

    let mut many_cases: [Case; 3] = [
        (
            "flamefire files()",
            Box::new(|| {
                let results = collapse::files(&parts);
                for (i, folded) in results.into_iter().enumerate() {
                    let svg = out.join(format!("ff-part-{i:02}.svg"));
                    render::svg(&folded.unwrap(), &labels("part"), &svg).unwrap();
                }
            }),
        ),
        (
            "flamefire file() one by one",
            Box::new(|| {
                for (i, part) in parts.iter().enumerate() {
                    let folded = collapse::file(part).unwrap();
                    let svg = out.join(format!("ff-part-{i:02}.svg"));
                    render::svg(&folded, &labels("part"), &svg).unwrap();
                }
            }),
        ),
        (
            "inferno CLI one by one",
            Box::new(|| {
                for (i, part) in parts.iter().enumerate() {
                    cli_pipeline(part, &out.join(format!("cli-part-{i:02}.svg")));
                }
            }),
        ),
    ];
    let [ff_parallel, ff_serial, cli_serial] = best_of_rounds(runs, &mut many_cases);

    // peak memory, each in a fresh process so earlier cases do not count
    let peak_big = child_peak(&["single", big.to_str().unwrap()]);
    let mut many = vec!["many".to_string()];
    many.extend(parts.iter().map(|p| p.display().to_string()));
    let peak_many = child_peak(&many.iter().map(String::as_str).collect::<Vec<_>>());
    let cli_peak_big = cli_peak(&big);

    let rate = |bytes: u64, time: Duration| bytes as f64 / MB / time.as_secs_f64();
    println!();
    println!("load average {} at the end; 2 cores", load_average());
    println!(
        "{:<42} {:>22} {:>22} {:>17}",
        "case", "flamefire", "baseline", "ratio wall / CPU"
    );
    let row = |case: &str, bytes: u64, ours: Timing, theirs: Timing, target: &str| {
        println!(
            "{case:<42} {:>7.1} MB/s {:>5.2} s CPU {:>7.1} MB/s {:>5.2} s CPU {:>8.2}× / {:.2}×  {target}",
            rate(bytes, ours.wall),
            ours.cpu.as_secs_f64(),
            rate(bytes, theirs.wall),
            theirs.cpu.as_secs_f64(),
            theirs.wall.as_secs_f64() / ours.wall.as_secs_f64(),
            theirs.cpu.as_secs_f64() / ours.cpu.as_secs_f64(),
        );
    };
    let part_mb = parts_bytes as f64 / MB / PARTS as f64;
    row(
        &format!("1 × {:.1} MB vs inferno CLI", big_bytes as f64 / MB),
        big_bytes,
        ff_big,
        cli_big,
        "(target ≥ 1×)",
    );
    row(
        &format!("{PARTS} × {part_mb:.1} MB: files() vs CLI one by one"),
        parts_bytes,
        ff_parallel,
        cli_serial,
        "(target ≥ 1.6×)",
    );
    row(
        &format!("{PARTS} × {part_mb:.1} MB: files() vs file() one by one"),
        parts_bytes,
        ff_parallel,
        ff_serial,
        "",
    );
    println!();
    println!(
        "{:<42} {:>12} {:>12} {:>8}",
        "peak memory (VmHWM)", "flamefire", "inferno CLI", "÷ input"
    );
    println!(
        "{:<42} {:>9.1} MB {:>12} {:>7.2}×  (target < 2×)",
        format!("1 × {:.1} MB", big_bytes as f64 / MB),
        peak_big as f64 / MB,
        cli_peak_big.map_or("n/a".to_string(), |b| format!("{:.1} MB", b as f64 / MB)),
        peak_big as f64 / big_bytes as f64,
    );
    println!(
        "{:<42} {:>9.1} MB {:>12} {:>7.2}×  (of the largest input; target < 2×)",
        format!("{PARTS} × {:.1} MB, files()", largest_part as f64 / MB),
        peak_many as f64 / MB,
        "",
        peak_many as f64 / largest_part as f64,
    );
}

fn labels(name: &str) -> Labels {
    Labels {
        title: format!("bench {name}"),
        subtitle: String::new(),
    }
}

/// A named piece of work to time.
type Case<'a> = (&'a str, Box<dyn FnMut() + 'a>);

/// The best wall-clock time and the least CPU time (all threads and child
/// processes) of a case over the rounds.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

/// Runs every case once per round, `runs` rounds, and keeps each case's
/// best times.
fn best_of_rounds<const N: usize>(runs: usize, cases: &mut [Case<'_>; N]) -> [Timing; N] {
    let mut best = [Timing {
        wall: Duration::MAX,
        cpu: Duration::MAX,
    }; N];
    for round in 1..=runs.max(1) {
        // each round starts with another case, so that no case always runs
        // right after the same neighbour
        for i in (0..N).map(|k| (k + round) % N) {
            let (name, case) = &mut cases[i];
            let (start, cpu_start) = (Instant::now(), cpu_time());
            case();
            let (wall, cpu) = (start.elapsed(), cpu_time() - cpu_start);
            eprintln!(
                "round {round}: {name:<28} {:>7.3} s wall {:>7.3} s CPU",
                wall.as_secs_f64(),
                cpu.as_secs_f64()
            );
            best[i].wall = best[i].wall.min(wall);
            best[i].cpu = best[i].cpu.min(cpu);
        }
    }
    best
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

fn require_inferno_cli() {
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

/// Re-runs this binary with `--child …` and returns its peak RSS in bytes.
fn child_peak(args: &[&str]) -> u64 {
    let output = Command::new(std::env::current_exe().unwrap())
        .arg("--child")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Peak RSS of `inferno-collapse-perf` alone, through GNU time if present.
fn cli_peak(input: &Path) -> Option<u64> {
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", "inferno-collapse-perf", "--jit", "--kernel"])
        .arg(input)
        .stdout(Stdio::null())
        .output()
        .ok()?;
    let stderr = String::from_utf8(output.stderr).ok()?;
    let kib: u64 = stderr.lines().last()?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Child side of [`child_peak`]: runs one case and prints `VmHWM` in bytes.
fn child(args: &[String]) {
    let out = tempfile::tempdir().unwrap();
    match args[0].as_str() {
        "single" => {
            let folded = collapse::file(Path::new(&args[1])).unwrap();
            render::svg(&folded, &labels("big"), &out.path().join("big.svg")).unwrap();
        }
        "many" => {
            let paths: Vec<PathBuf> = args[1..].iter().map(PathBuf::from).collect();
            for (i, folded) in collapse::files(&paths).into_iter().enumerate() {
                let svg = out.path().join(format!("{i}.svg"));
                render::svg(&folded.unwrap(), &labels("part"), &svg).unwrap();
            }
        }
        other => panic!("unknown child case {other}"),
    }
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    println!("{}", kib * 1024);
}
