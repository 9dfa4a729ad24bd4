//! `perf script` text → blocks of whole events, folded on threads: this
//! thread reads the next block while workers fold the ones before, and
//! their results are merged at the end.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;

use super::Window;
use super::error::Stop;
use super::fold::{Folder, Parsed};
use super::format::Head;
use super::script::parse_event_line;

/// Size of the blocks of whole events that threads fold on their own. Big
/// enough that per-block costs vanish, small enough that a few blocks per
/// thread are little memory.
pub(super) const BLOCK_BYTES: usize = 256 << 10;

/// Folds `perf script` text on `threads` threads.
///
/// The input is read in blocks of whole events (see [`Blocks`]). With more
/// than one thread, workers fold blocks on their own while this thread reads
/// the next ones. Blocks in flight are bounded, so memory stays a few blocks
/// per thread.
pub(super) fn fold_perf(
    input: Head<'_>,
    window: Window,
    origin: Option<u64>,
    threads: usize,
) -> Result<Parsed, Stop> {
    let mut blocks = Blocks {
        input,
        carry: Vec::new(),
    };
    if threads <= 1 {
        let mut folder = Folder::default();
        let (mut spare, mut seq) = (Vec::new(), 0);
        while let Some(block) = blocks.next(spare)? {
            folder.block(&block, seq, window, origin)?;
            seq += 1;
            spare = block;
        }
        return Ok(folder.parsed);
    }

    let (sender, receiver) = mpsc::sync_channel::<(u64, Vec<u8>)>(threads);
    let receiver = Mutex::new(receiver);
    // Folded blocks come back to be filled again: fresh buffers would cost
    // a page fault per 4 KiB read.
    let (spare_sender, spares) = mpsc::channel::<Vec<u8>>();
    let failed = AtomicBool::new(false);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let spare_sender = spare_sender.clone();
                let (receiver, failed) = (&receiver, &failed);
                scope.spawn(move || {
                    let mut folder = Folder::default();
                    loop {
                        let block = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((seq, block)) = block else { break };
                        if let Err(e) = folder.block(&block, seq, window, origin) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                        let _ = spare_sender.send(block);
                    }
                    Ok(folder.parsed)
                })
            })
            .collect();

        let mut read = Ok(());
        let mut seq = 0;
        while !failed.load(Ordering::Relaxed) {
            match blocks.next(spares.try_recv().unwrap_or_default()) {
                Ok(Some(block)) => {
                    if sender.send((seq, block)).is_err() {
                        break;
                    }
                    seq += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    read = Err(Stop::Read(e));
                    break;
                }
            }
        }
        drop(sender);

        let mut outcome: Result<Parsed, Stop> = read.map(|()| Parsed::default());
        for worker in workers {
            match worker.join() {
                Ok(Ok(part)) => {
                    if let Ok(all) = &mut outcome {
                        all.merge(part);
                    }
                }
                Ok(Err(e)) => {
                    if outcome.is_ok() {
                        outcome = Err(e);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        outcome
    })
}

/// Reads `perf script` text in blocks of about [`BLOCK_BYTES`] that end
/// where an event starts, so that each block can be folded on its own.
struct Blocks<'a> {
    input: Head<'a>,
    /// The start of the event that the last block cut off.
    carry: Vec<u8>,
}

impl Blocks<'_> {
    /// The next block, filled into `spare` (any old block) to reuse its
    /// memory; `None` at the end of the input.
    fn next(&mut self, mut spare: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        spare.clear();
        spare.reserve(BLOCK_BYTES + self.carry.len());
        let mut block = spare;
        block.append(&mut self.carry);
        loop {
            let read = (&mut self.input)
                .take(BLOCK_BYTES as u64)
                .read_to_end(&mut block)?;
            if read == 0 {
                return Ok((!block.is_empty()).then_some(block));
            }
            // one event bigger than a block: keep reading it
            if let Some(cut) = last_event_start(&block) {
                self.carry.extend_from_slice(&block[cut..]);
                block.truncate(cut);
                return Ok(Some(block));
            }
        }
    }
}

/// Offset in `block` where a block can end: after the last blank line
/// (events with call chains end with one), or else, for one-line events,
/// at the start of the last complete event line. `None` if there is none
/// after the first byte.
pub(super) fn last_event_start(block: &[u8]) -> Option<usize> {
    if let Some(blank) = memchr::memmem::rfind(block, b"\n\n") {
        return Some(blank + 2);
    }
    // no blank line: one-line events; cut at the last event line
    let mut end = block.len();
    for newline in memchr::memrchr_iter(b'\n', block).take(64) {
        let start = newline + 1;
        if start < end && start > 0 {
            let line = &block[start..end];
            if line[0] != b'\t' && line[0] != b'#' && parse_event_line(line).is_some() {
                return Some(start);
            }
        }
        end = newline;
    }
    None
}
