//! Stage **render**: [`Folded`] stacks → flamegraph SVG (inferno), plus the
//! `.folded` text beside it for other tools.
//!
//! It must not collapse, download or decide what to draw: callers pass the
//! stacks and the labels. inferno's types stop here.
//!
//! Output is deterministic (colours come from a hash of each frame's name,
//! never from a random generator), so the same stacks give a byte-identical
//! SVG, and every file is written atomically: a temporary file in the same
//! directory is renamed over the target, so a reader never sees half an SVG.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use inferno::flamegraph::{self, Options, Palette, color::MultiPalette};

use crate::collapse::Folded;
use crate::diff::Differential;

/// Frames narrower than this share of all samples (in percent) are left
/// out: at the default 1200 px width they would be under a pixel wide, and
/// leaving them out keeps fleet-wide SVGs small.
const MIN_WIDTH_PERCENT: f64 = 0.05;

/// The two text lines on top of a flamegraph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    pub title: String,
    /// Host, duration, samples, date — built by callers.
    pub subtitle: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "could not write {path}\n  next step: check that --out is writable and the disk is not full"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "nothing to draw in {path}: the stacks hold no samples\n  next step: record for longer or while the process is busy"
    )]
    Empty { path: PathBuf },
}

/// Renders one flamegraph to `out` and writes its stacks to `out` with the
/// extension `.folded`.
pub fn svg(folded: &Folded, labels: &Labels, out: &Path) -> Result<(), RenderError> {
    draw(folded, labels, out)?;
    self::folded(folded, &out.with_extension("folded"))
}

/// Renders one flamegraph of several inputs, each under a root frame named
/// after it (`Folded::name`), and writes the merged `.folded` beside it.
pub fn merged(parts: &[&Folded], labels: &Labels, out: &Path) -> Result<(), RenderError> {
    let all = Folded::new(
        "merged",
        parts
            .iter()
            .flat_map(|part| part.with_root(&part.name).stacks),
    );
    svg(&all, labels, out)
}

/// Renders a differential flamegraph (see `diff::growth` and
/// `diff::negated`): widths from the second profile, red where a frame's
/// share grew, blue where it shrank. The three-column folded text goes
/// beside it with the extension `.folded`, for `inferno-flamegraph`.
pub fn differential(diff: &Differential, labels: &Labels, out: &Path) -> Result<(), RenderError> {
    if diff.samples == 0 {
        return Err(RenderError::Empty {
            path: out.to_path_buf(),
        });
    }
    let mut options = options(labels);
    options.negate_differentials = diff.negate;
    write_atomically(out, |file| {
        flamegraph::from_lines(
            &mut options,
            diff.lines.iter().map(String::as_str),
            BufWriter::new(file),
        )
    })?;
    write_atomically(&out.with_extension("folded"), |file| {
        let mut writer = BufWriter::new(file);
        for line in &diff.lines {
            writeln!(writer, "{line}")?;
        }
        writer.flush()
    })
}

/// Writes `folded` in the standard folded format to `out`.
pub fn folded(folded: &Folded, out: &Path) -> Result<(), RenderError> {
    write_atomically(out, |file| folded.write_to(file))
}

fn draw(folded: &Folded, labels: &Labels, out: &Path) -> Result<(), RenderError> {
    if folded.samples == 0 {
        return Err(RenderError::Empty {
            path: out.to_path_buf(),
        });
    }
    let mut options = options(labels);
    let lines: Vec<String> = folded
        .stacks
        .iter()
        .map(|(stack, count)| format!("{stack} {count}"))
        .collect();
    write_atomically(out, |file| {
        flamegraph::from_lines(
            &mut options,
            lines.iter().map(String::as_str),
            BufWriter::new(file),
        )
    })
}

/// Options shared by every flamegraph: deterministic colours, our labels,
/// and input that callers have already sorted (as inferno would).
fn options(labels: &Labels) -> Options<'static> {
    let mut options = Options::default();
    options.colors = Palette::Multi(MultiPalette::Js);
    options.hash = true;
    options.title = labels.title.clone();
    options.subtitle = Some(labels.subtitle.clone()).filter(|s| !s.is_empty());
    options.count_name = "samples".to_string();
    options.min_width = MIN_WIDTH_PERCENT;
    options.no_sort = true;
    options
}

/// Writes through a temporary file in `out`'s directory, then renames it
/// over `out`: a rename within one file system is atomic.
fn write_atomically(
    out: &Path,
    write: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> Result<(), RenderError> {
    let failed = |source| RenderError::Write {
        path: out.to_path_buf(),
        source,
    };
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    write(temp.as_file_mut()).map_err(failed)?;
    temp.as_file_mut().flush().map_err(failed)?;
    temp.persist(out).map_err(|e| failed(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Folded {
        Folded::new(
            name,
            [
                ("node;main;tokenizeHtml_[j]".to_string(), 7),
                ("node;main;parseHtmlDocument_[j]".to_string(), 3),
                ("node;uv_run;epoll_wait_[k]".to_string(), 2),
            ],
        )
    }

    fn labels() -> Labels {
        Labels {
            title: "CPU of api-1".to_string(),
            subtitle: "i-0abc, 30 s, 12 samples".to_string(),
        }
    }

    #[test]
    fn same_stacks_give_byte_identical_svgs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.svg"), dir.path().join("b.svg"));
        svg(&sample("x"), &labels(), &a).unwrap();
        svg(&sample("x"), &labels(), &b).unwrap();
        let first = std::fs::read(&a).unwrap();
        assert_eq!(first, std::fs::read(&b).unwrap());
        let text = String::from_utf8(first).unwrap();
        assert!(text.contains("CPU of api-1"));
        assert!(text.contains("i-0abc, 30 s, 12 samples"));
        assert!(text.contains("tokenizeHtml (7 samples"), "{text}");
    }

    #[test]
    fn folded_text_is_written_beside_the_svg() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("api-1.svg");
        svg(&sample("x"), &labels(), &out).unwrap();
        let text = std::fs::read_to_string(dir.path().join("api-1.folded")).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("node;main;tokenizeHtml_[j] 7\n"));
        // nothing but the two outputs: the temporary files were renamed
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn merged_graph_has_one_root_frame_per_part() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fleet.svg");
        let (a, b) = (sample("i-0aaa"), sample("i-0bbb"));
        merged(&[&a, &b], &labels(), &out).unwrap();
        let text = std::fs::read_to_string(dir.path().join("fleet.folded")).unwrap();
        let roots: std::collections::BTreeSet<&str> = text
            .lines()
            .map(|line| line.split(';').next().unwrap())
            .collect();
        assert_eq!(roots.into_iter().collect::<Vec<_>>(), ["i-0aaa", "i-0bbb"]);
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(
            svg.contains("<title>i-0aaa (12 samples, 50.00%)</title>"),
            "{svg}"
        );
    }

    #[test]
    fn differential_graphs_colour_growth_red_and_shrinkage_blue() {
        let dir = tempfile::tempdir().unwrap();
        let before = Folded::new(
            "b",
            [
                ("node;main;old".to_string(), 5),
                ("node;main;same".to_string(), 5),
            ],
        );
        let after = Folded::new(
            "a",
            [
                ("node;main;new".to_string(), 5),
                ("node;main;same".to_string(), 5),
            ],
        );
        let fill = |svg: &str, name: &str| -> String {
            let at = svg
                .find(&format!("<title>{name} ("))
                .unwrap_or_else(|| panic!("{name}: {svg}"));
            let rest = &svg[at..];
            let start = rest.find("fill=\"").unwrap() + 6;
            rest[start..start + rest[start..].find('"').unwrap()].to_string()
        };
        let out = dir.path().join("diff.svg");
        differential(&crate::diff::growth(&before, &after), &labels(), &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(
            fill(&svg, "new").starts_with("rgb(255,"),
            "{}",
            fill(&svg, "new")
        );
        assert!(
            !svg.contains("<title>old ("),
            "only AFTER's frames are drawn"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("diff.folded"))
                .unwrap()
                .lines()
                .count(),
            3
        );

        let out = dir.path().join("diff-negated.svg");
        differential(&crate::diff::negated(&before, &after), &labels(), &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        let old = fill(&svg, "old");
        assert!(old.starts_with("rgb(") && old.ends_with(",255)"), "{old}");
        assert!(
            !svg.contains("<title>new ("),
            "only BEFORE's frames are drawn"
        );
    }

    #[test]
    fn empty_stacks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("none.svg");
        let error = svg(&Folded::new("x", []), &labels(), &out).unwrap_err();
        assert!(matches!(error, RenderError::Empty { .. }));
        assert!(!out.exists());
    }

    #[test]
    fn unwritable_output_names_the_path() {
        let out = Path::new("/nonexistent-dir/flame.svg");
        let error = svg(&sample("x"), &labels(), out).unwrap_err();
        assert!(matches!(error, RenderError::Write { .. }));
        assert!(error.to_string().contains("/nonexistent-dir/flame.svg"));
    }
}
