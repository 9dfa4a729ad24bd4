//! What an input is, from its first lines: `perf script` text, folded
//! stacks, blank, or neither (gzip is undone before, in `collapse::read`);
//! and the reader of folded stacks.

use std::collections::HashMap;
use std::io::{self, BufRead, Read};

use super::error::{Stop, snippet};
use super::script::{parse_event_line, parse_frame};

/// Lines looked at to tell `perf script` from folded stacks.
const DETECT_LINES: usize = 16;

/// Upper bound on the bytes read ahead for detection, in case of huge lines.
const DETECT_BYTES: usize = 256 * 1024;

/// What an input holds, decided from its first meaningful lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Perf,
    Folded,
    /// Nothing but blank and comment lines.
    Blank,
    /// Neither; carries the 1-based number of the first line that fits neither.
    Unknown(u64),
}

/// Input with its already-read head put back in front.
pub(super) type Head<'a> = io::Chain<io::Cursor<Vec<u8>>, Box<dyn BufRead + 'a>>;

/// Reads the first few meaningful lines, classifies them, and returns the
/// input with those lines put back.
pub(super) fn sniff(mut input: Box<dyn BufRead + '_>) -> io::Result<(Head<'_>, Format)> {
    let mut head = Vec::new();
    let mut meaningful = 0;
    while meaningful < DETECT_LINES && head.len() < DETECT_BYTES {
        let start = head.len();
        if input.read_until(b'\n', &mut head)? == 0 {
            break;
        }
        if !is_skippable(&head[start..]) {
            meaningful += 1;
        }
    }
    let format = detect(&head);
    Ok((io::Cursor::new(head).chain(input), format))
}

fn is_skippable(line: &[u8]) -> bool {
    line.first() == Some(&b'#') || line.iter().all(u8::is_ascii_whitespace)
}

/// Tells `perf script` output from folded stacks by the first meaningful
/// line (blank lines and `#` comments are skipped): an event line or a
/// frame line → `perf script`; `stack count` with an integer count, not
/// indented → folded (later lines are checked as they are read).
pub(super) fn detect(head: &[u8]) -> Format {
    let Some((index, first)) = head
        .split(|&b| b == b'\n')
        .enumerate()
        .find(|(_, line)| !is_skippable(line))
    else {
        return Format::Blank;
    };
    if parse_event_line(first).is_some() || parse_frame(first).is_some() {
        return Format::Perf;
    }
    if parse_folded_line(&String::from_utf8_lossy(first)).is_some() {
        return Format::Folded;
    }
    Format::Unknown(index as u64 + 1)
}

fn parse_folded_line(line: &str) -> Option<(&str, u64)> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.starts_with([' ', '\t']) {
        return None;
    }
    let (stack, count) = line.rsplit_once(' ')?;
    let stack = stack.trim_end();
    if stack.is_empty() || count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stack, count.parse().ok()?))
}

pub(super) fn read_folded(mut input: Head<'_>) -> Result<Vec<(String, u64)>, Stop> {
    // Merged as read: a big folded file usually repeats few stacks.
    let mut merged: HashMap<String, u64> = HashMap::new();
    let mut line = String::new();
    let mut no = 0;
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        no += 1;
        if is_skippable(line.as_bytes()) {
            continue;
        }
        let Some((stack, count)) = parse_folded_line(&line) else {
            return Err(Stop::Unrecognised {
                line: no,
                snippet: snippet(&line),
            });
        };
        match merged.get_mut(stack) {
            Some(total) => *total += count,
            None => {
                merged.insert(stack.to_string(), count);
            }
        }
    }
    Ok(merged.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERF: &[u8] = b"# ========\n# captured on: today\n\
node  9495   10.000000:   10101010 cpu-clock:ppp: \n\
\t          866cc8 node::Start+0x154 (/usr/bin/node)\n\n";

    #[test]
    fn detection_rules() {
        assert_eq!(detect(PERF), Format::Perf);
        assert_eq!(
            detect(b"\t7f5b867c66e2 foo+0x1 (/usr/bin/node)\n"),
            Format::Perf
        );
        assert_eq!(detect(b"a;b 1\nc 2\n"), Format::Folded);
        // later lines of a folded file are checked as they are read
        assert_eq!(detect(b"a;b 1\nc;d"), Format::Folded);
        assert_eq!(detect(b"\n# only a comment\n\n"), Format::Blank);
        assert_eq!(detect(b"hello world\n"), Format::Unknown(1));
        assert_eq!(detect(b"\na;b 1.5\n"), Format::Unknown(2));
        assert_eq!(detect(b"  a;b 1\n"), Format::Unknown(1));
    }
}
