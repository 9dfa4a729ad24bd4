//! Golden tests on real captures: `perf script` output of real Node
//! processes in `tests/data/captures/` → folded stacks compared with
//! `tests/data/expected/<name>.folded`, and SVGs checked for structure and
//! frame names (never for bytes: inferno's layout may change).
//!
//! The expected files were made by `inferno-collapse-perf --jit --kernel`
//! (through flamefire 0.1's inferno-based folding, which counted one per
//! sample and renamed `[perf-PID.map]` frames `[unknown]`), so they hold
//! flamefire's own parser to inferno's frame naming. A missing expected file
//! fails the test; only `FLAMEFIRE_BLESS=1` writes them, after a deliberate
//! change, as inferno's own tests do. The layout corpus is in corpus.rs.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use flamefire::collapse::{CollapseError, Folded, Window};
use flamefire::render::{self, Labels};
use flamefire::stacks;
use quick_xml::events::Event;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Every capture, sorted. Panics rather than skip when there are none.
fn captures() -> Vec<PathBuf> {
    let dir = data_dir().join("captures");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e} (see its README.md)", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.ends_with(".perf") || name.ends_with(".perf.gz")
        })
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no *.perf or *.perf.gz captures in {}",
        dir.display()
    );
    paths
}

/// The capture called `name` (`.perf.gz` preferred over `.perf`).
fn capture(name: &str) -> PathBuf {
    let dir = data_dir().join("captures");
    [".perf.gz", ".perf"]
        .iter()
        .map(|ext| dir.join(format!("{name}{ext}")))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("capture {name}.perf(.gz) is missing from {}", dir.display()))
}

fn collapsed(path: &Path) -> Folded {
    stacks::file(path).unwrap_or_else(|e| panic!("collapsing {}: {e}", path.display()))
}

#[test]
fn captures_collapse_to_the_expected_folded_stacks() {
    let bless = std::env::var_os("FLAMEFIRE_BLESS").is_some_and(|v| v == "1");
    let expected_dir = data_dir().join("expected");
    let mut mismatches = Vec::new();
    for path in captures() {
        let folded = collapsed(&path);
        let mut actual = Vec::new();
        folded.write_to(&mut actual).unwrap();
        let actual = String::from_utf8(actual).unwrap();
        let expected_path = expected_dir.join(format!("{}.folded", folded.name));
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            eprintln!(
                "wrote {} from {}; read it line by line before committing",
                expected_path.display(),
                path.display()
            );
            continue;
        }
        // A missing golden file fails: it is never written behind your back.
        let Ok(expected) = std::fs::read_to_string(&expected_path) else {
            mismatches.push(format!(
                "{} is missing (FLAMEFIRE_BLESS=1 writes it)",
                expected_path.display()
            ));
            continue;
        };
        if actual != expected {
            let first_difference = actual
                .lines()
                .zip(expected.lines())
                .position(|(a, e)| a != e)
                .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
            mismatches.push(format!(
                "{} differs from {} at line {} (got {} lines, expected {})",
                path.display(),
                expected_path.display(),
                first_difference + 1,
                actual.lines().count(),
                expected.lines().count(),
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}\nrerun with FLAMEFIRE_BLESS=1 if the change is intended",
        mismatches.join("\n")
    );
}

#[test]
fn gzipped_and_plain_captures_fold_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for path in captures() {
        let name = path.file_name().unwrap().to_string_lossy();
        let Some(plain_name) = name.strip_suffix(".gz") else {
            continue;
        };
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_end(&mut text)
            .unwrap();
        let plain = dir.path().join(plain_name);
        std::fs::write(&plain, text).unwrap();
        assert_eq!(collapsed(&path), collapsed(&plain), "{name}");
        compared += 1;
    }
    assert!(compared > 0, "no gzipped capture to compare");
}

/// One `<g>` of an inferno SVG: a frame.
#[derive(Debug)]
struct Frame {
    name: String,
    /// Samples before this frame at its depth (`fg:x`) and in it (`fg:w`).
    x: u64,
    samples: u64,
    y: f64,
}

/// What the tests look at in an SVG, parsed with a real XML parser.
#[derive(Debug, Default)]
struct Svg {
    title: String,
    subtitle: String,
    frames: Vec<Frame>,
}

impl Svg {
    fn names(&self) -> BTreeSet<&str> {
        self.frames.iter().map(|f| f.name.as_str()).collect()
    }

    fn has_frame_containing(&self, needle: &str) -> bool {
        self.frames.iter().any(|f| f.name.contains(needle))
    }

    /// Whether a frame named like `child` sits directly on one named like
    /// `parent` (one level up, within its span).
    fn has_call(&self, parent: &str, child: &str) -> bool {
        let level = self.frame_height();
        self.frames
            .iter()
            .filter(|p| p.name.contains(parent))
            .any(|p| {
                self.frames.iter().any(|c| {
                    c.name.contains(child)
                        && c.y == p.y - level
                        && c.x >= p.x
                        && c.x + c.samples <= p.x + p.samples
                })
            })
    }

    /// Vertical distance between two levels of frames.
    fn frame_height(&self) -> f64 {
        let all = self.all();
        all.y - self.roots_y()
    }

    fn all(&self) -> &Frame {
        self.frames
            .iter()
            .find(|f| f.name == "all")
            .expect("an `all` frame")
    }

    fn roots_y(&self) -> f64 {
        let all = self.all();
        self.frames
            .iter()
            .map(|f| f.y)
            .filter(|y| *y < all.y)
            .fold(f64::MIN, f64::max)
    }

    /// Frames right above `all`, i.e. the roots of the folded stacks.
    fn roots(&self) -> Vec<&Frame> {
        let level = self.roots_y();
        self.frames.iter().filter(|f| f.y == level).collect()
    }
}

/// Parses `path`, failing on any XML error or unbalanced element.
fn parse_svg(path: &Path) -> Svg {
    let text = std::fs::read_to_string(path).unwrap();
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut svg = Svg::default();
    let mut open: Vec<String> = Vec::new();
    let mut text_id: Option<String> = None;
    let mut title = String::new();
    let mut rect: Option<(u64, u64, f64)> = None;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
        match event {
            Event::Start(element) => {
                let name = element.name().as_ref().to_string();
                if name == "text" {
                    text_id = attribute(&element, "id");
                }
                if name == "title" {
                    title.clear();
                }
                open.push(name);
            }
            Event::Empty(element) if element.name().as_ref() == "rect" => {
                let number = |name| attribute(&element, name).map(|v| v.parse::<f64>().unwrap());
                if let (Some(x), Some(w), Some(y)) = (number("fg:x"), number("fg:w"), number("y")) {
                    rect = Some((x as u64, w as u64, y));
                }
            }
            Event::Text(content) => {
                let content = content.xml10_content();
                match (open.last().map(String::as_str), text_id.as_deref()) {
                    (Some("title"), _) => title.push_str(&content),
                    (Some("text"), Some("title")) => svg.title.push_str(&content),
                    (Some("text"), Some("subtitle")) => svg.subtitle.push_str(&content),
                    _ => {}
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = quick_xml::escape::resolve_predefined_entity(&reference)
                    .map(str::to_string)
                    .or_else(|| reference.resolve_char_ref().ok()?.map(String::from))
                    .unwrap_or_else(|| panic!("unknown entity &{};", &*reference));
                if open.last().map(String::as_str) == Some("title") {
                    title.push_str(&resolved);
                }
            }
            Event::End(element) => {
                let name = element.name().as_ref().to_string();
                assert_eq!(open.pop().as_deref(), Some(name.as_str()));
                match name.as_str() {
                    "g" => {
                        if let Some((x, samples, y)) = rect.take() {
                            // `name (1,234 samples, 5.67%)`
                            let (frame, _) = title.rsplit_once(" (").expect("frame title");
                            svg.frames.push(Frame {
                                name: frame.to_string(),
                                x,
                                samples,
                                y,
                            });
                        }
                    }
                    "text" => text_id = None,
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed elements {open:?}");
    svg
}

fn attribute(element: &quick_xml::events::BytesStart, name: &str) -> Option<String> {
    element
        .attributes()
        .map(|a| a.unwrap())
        .find(|a| a.key.as_ref() == name)
        .map(|a| a.value.into_owned())
}

fn render(folded: &Folded, dir: &Path) -> Svg {
    let out = dir.join(format!("{}.svg", folded.name));
    let labels = Labels {
        title: format!("CPU of {}", folded.name),
        subtitle: format!("{} samples", folded.samples),
    };
    render::svg(folded, &labels, &out).unwrap();
    parse_svg(&out)
}

#[test]
fn every_capture_renders_a_well_formed_svg_with_its_labels() {
    let dir = tempfile::tempdir().unwrap();
    for path in captures() {
        let folded = collapsed(&path);
        let svg = render(&folded, dir.path());
        assert_eq!(svg.title, format!("CPU of {}", folded.name));
        assert_eq!(svg.subtitle, format!("{} samples", folded.samples));
        assert_eq!(svg.all().samples, folded.samples, "{}", path.display());
        let roots: Vec<&str> = svg.roots().iter().map(|f| f.name.as_str()).collect();
        // The demo's processes are titled `flamefire-demo-…`, which the
        // kernel cuts to 15 bytes; pids are not kept, so the workers of the
        // cluster share one root instead of `flamefire-demo--20953` etc.
        assert!(roots.contains(&"flamefire-demo-"), "{roots:?}");
        let with_pid = |root: &&str| {
            root.rsplit_once('-')
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        };
        assert!(
            !roots.iter().any(with_pid),
            "a root carries a pid: {roots:?}"
        );
    }
}

#[test]
fn basic_prof_captures_show_tokenize_html_called_by_parse_html_document() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["cluster-basic-prof", "only-functions", "sick"] {
        let svg = render(&collapsed(&capture(name)), dir.path());
        assert!(
            svg.has_call("parseHtmlDocument", "tokenizeHtml"),
            "{name}: no tokenizeHtml on top of parseHtmlDocument among {:?}",
            svg.names()
        );
        // JIT frames are annotated `_[j]` in the folded stacks; the SVG shows
        // the bare name (the annotation only picks the colour)
        assert!(!svg.has_frame_containing("_[j]"), "{name}");
    }
}

#[test]
fn sick_capture_is_hot_in_the_tokenizer_and_healthy_in_serve_json() {
    // The captures' README: tokenizeHtml is the innermost JS frame of most
    // `sick` samples and absent from `healthy`, where serveJson is.
    let leaves = |name: &str| -> Vec<String> {
        let top = collapsed(&capture(name)).top_functions(5);
        top.into_iter().map(|f| f.name).collect()
    };
    let (sick, healthy) = (leaves("sick"), leaves("healthy"));
    assert!(
        sick.iter().any(|f| f.starts_with("JS:*tokenizeHtml ")),
        "{sick:?}"
    );
    assert!(
        healthy.iter().any(|f| f.contains("serveJson")),
        "{healthy:?}"
    );
    let everywhere = collapsed(&capture("healthy")).top_functions(usize::MAX);
    assert!(!everywhere.iter().any(|f| f.name.contains("tokenizeHtml")));
}

#[test]
fn no_map_capture_shows_unknown_jit_frames_and_no_js_names() {
    let dir = tempfile::tempdir().unwrap();
    let svg = render(&collapsed(&capture("no-map")), dir.path());
    assert!(svg.names().contains("[unknown]"), "{:?}", svg.names());
    assert!(!svg.has_frame_containing("JS:"), "{:?}", svg.names());
    // the pid-bearing `[perf-<pid>.map]` form is folded away
    assert!(!svg.has_frame_containing("[perf-"), "{:?}", svg.names());
}

#[test]
fn time_windows_find_the_idle_gap_between_bursts() {
    // `burst` records workers that burn CPU for 1 s every 3 s and idle in
    // between. Quarter-second windows must add up to the whole capture and
    // show a busy stretch, at least 1 s with no samples, then another.
    const STEP: f64 = 0.25;
    let path = capture("burst");
    let total = collapsed(&path).samples;
    let buckets: Vec<u64> = (0..40)
        .map(|i| {
            let window = Window {
                from_s: Some(i as f64 * STEP),
                // the last bucket is open-ended, so nothing can escape
                to_s: (i < 39).then_some((i + 1) as f64 * STEP),
            };
            match stacks::file_window(&path, window) {
                Ok(folded) => folded.samples,
                Err(CollapseError::Empty { .. }) => 0,
                Err(e) => panic!("window {window:?}: {e}"),
            }
        })
        .collect();
    assert_eq!(buckets.iter().sum::<u64>(), total, "{buckets:?}");
    let first_busy = buckets.iter().position(|&n| n > 0).unwrap();
    let gap = buckets[first_busy..]
        .iter()
        .skip_while(|&&n| n > 0)
        .take_while(|&&n| n == 0)
        .count();
    let after_gap = buckets[first_busy..]
        .iter()
        .skip_while(|&&n| n > 0)
        .skip_while(|&&n| n == 0)
        .sum::<u64>();
    assert!(gap as f64 * STEP >= 1.0 && after_gap > 0, "{buckets:?}");
}

#[test]
fn merged_svg_has_each_input_as_a_root_frame() {
    let dir = tempfile::tempdir().unwrap();
    let parts: Vec<Folded> = ["sick", "healthy", "no-map"]
        .iter()
        .map(|name| collapsed(&capture(name)))
        .collect();
    let out = dir.path().join("fleet.svg");
    let labels = Labels {
        title: "CPU of the fleet".to_string(),
        subtitle: String::new(),
    };
    render::merged(&parts.iter().collect::<Vec<_>>(), &labels, &out).unwrap();
    let svg = parse_svg(&out);
    assert_eq!(svg.title, "CPU of the fleet");
    let mut roots: Vec<(&str, u64)> = svg
        .roots()
        .iter()
        .map(|f| (f.name.as_str(), f.samples))
        .collect();
    let mut expected: Vec<(&str, u64)> =
        parts.iter().map(|p| (p.name.as_str(), p.samples)).collect();
    roots.sort();
    expected.sort();
    assert_eq!(roots, expected);
    assert!(out.with_extension("folded").exists());
}
