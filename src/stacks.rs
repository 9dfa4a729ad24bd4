//! Local stack files → [`Folded`]: opens each file and hands it to
//! `collapse`, which reads bytes and never opens anything itself. Several
//! files are collapsed at once, one per core, each on the cores left over.
//!
//! It must not parse: what a file holds is `collapse`'s business.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::collapse::{self, CollapseError, Folded, Select, Window};

/// Collapses one file (plain or gzip `perf script` text, or folded
/// stacks), using every core for a big one.
pub fn file(path: &Path) -> Result<Folded, CollapseError> {
    file_with(path, &Select::default())
}

/// Like [`file`], keeping only the events inside `window`.
pub fn file_window(path: &Path, window: Window) -> Result<Folded, CollapseError> {
    let select = Select {
        window,
        ..Select::default()
    };
    file_with(path, &select)
}

/// Like [`file`], folding the samples that `select` picks.
pub fn file_with(path: &Path, select: &Select) -> Result<Folded, CollapseError> {
    on(path, select, collapse::cores())
}

/// Collapses several files in parallel, one file per core at a time (with
/// fewer files than cores, each file is folded on the cores left over).
/// Results are in input order; one bad file does not affect the others.
pub fn files_with(paths: &[PathBuf], select: &Select) -> Vec<Result<Folded, CollapseError>> {
    let cores = collapse::cores();
    let workers = cores.min(paths.len()).max(1);
    let threads_per_file = (cores / workers).max(1);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Folded, CollapseError>>>> =
        paths.iter().map(|_| Mutex::new(None)).collect();
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                // A shared cursor rather than fixed shares: files differ in
                // size, so whichever thread is free takes the next one.
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let result = on(path, select, threads_per_file);
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every file is collapsed before the scope ends")
        })
        .collect()
}

/// Opens `path` and collapses it on `threads` threads.
fn on(path: &Path, select: &Select, threads: usize) -> Result<Folded, CollapseError> {
    let input = File::open(path).map_err(|source| CollapseError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    collapse::read_on(path, input, select, threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERF: &str = "node 1 1.0: 1 cpu-clock:\n\t866cc8 node::Start+0x154 (/usr/bin/node)\n\n";

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let error = file(Path::new("/nonexistent/stacks.gz")).unwrap_err();
        assert!(matches!(error, CollapseError::Read { .. }));
        assert!(error.to_string().contains("/nonexistent/stacks.gz"));
    }

    #[test]
    fn files_keeps_input_order_and_isolates_failures() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(&dir, "a.folded", b"x;y 2\n");
        let bad = write(&dir, "b.perf", b"");
        let other = write(&dir, "c.perf", PERF.as_bytes());
        let results = files_with(&[good.clone(), bad, other, good], &Select::default());
        assert_eq!(results.len(), 4);
        assert_eq!(results[0].as_ref().unwrap().name, "a");
        assert!(matches!(results[1], Err(CollapseError::Empty { .. })));
        assert_eq!(
            results[2].as_ref().unwrap().stacks,
            vec![("node;node::Start".to_string(), 1)]
        );
        assert_eq!(results[3].as_ref().unwrap().samples, 2);
    }
}
