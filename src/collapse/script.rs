//! The `perf script` line parser: an event line's fields and a frame line's
//! symbol and dso, as byte ranges and slices of the line (no allocation).
//! Which line is which is up to `fold`; what a frame is called, to `names`.

pub(super) fn trim_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    &line[..end]
}

pub(super) fn trim_start(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(line.len());
    &line[start..]
}

/// The parts of a `perf script` event line that flamefire needs; byte
/// ranges are into the line.
#[derive(Debug, PartialEq)]
pub(super) struct EventLine {
    /// The command name (may hold spaces and digits); empty without `comm`.
    pub(super) comm: (usize, usize),
    /// Nanoseconds, when the line has a `time:` field.
    pub(super) time: Option<u64>,
    pub(super) period: Option<u64>,
    /// The event name with its modifiers (`cycles:ppp`, `sched:sched_switch`).
    pub(super) name: (usize, usize),
    /// Where what follows the event name starts (a one-line frame, or a
    /// tracepoint's fields).
    pub(super) rest: usize,
}

/// Reads an event line whatever `perf script -F` left out. perf prints
/// (`perf_sample__fprintf_start` and `process_event` in
/// tools/perf/builtin-script.c), each field optional:
///
/// ```text
/// comm  pid/tid  [cpu]  time:  period  event:  [one-line frame | tracepoint fields]
/// node  9495   296.427171:   10101010 cpu-clock:ppp:
/// V8 WorkerThread 24636/25607 [000] 94564.109216: cycles:
/// node 9495 [001]  5000.123456789: sched:sched_switch: prev_comm=node …
/// ```
///
/// The anchors are the colons followed by a space (or ending the line):
/// event names may hold colons (`sched:sched_switch`, `cycles:u`) but never
/// `": "`. The word before the first such colon is the time when it is a
/// number with a dot (`296.427171`, `--ns` gives 9 decimals); the event name
/// is then the last word before the next one, with the period before it.
/// Without a time, the event name is the last word before the first such
/// colon. What is left of the time (or of the period and event) is
/// `comm pid[/tid] [cpu]`, read from the right so that a command name may hold
/// spaces and digit-only words. A line needs a time or a pid to count.
pub(super) fn parse_event_line(line: &[u8]) -> Option<EventLine> {
    let line = trim_end(line);
    let first = colon_separator(line, 0)?;
    let head = &line[..first];
    let last_start = word_start(head);
    let (time, before, name, period, rest) = match parse_time(&head[last_start..]) {
        Some(time) => {
            let after = first + 1;
            match colon_separator(line, after) {
                Some(second) => {
                    let segment = &line[after..second];
                    let name_start = after + word_start(segment);
                    let (period, _) = digits_word_before(line, after, name_start);
                    (
                        Some(time),
                        last_start,
                        (name_start, second),
                        period,
                        second + 1,
                    )
                }
                None => {
                    // no event name (`-F` without `event`): maybe a period
                    let tail = trim_start(&line[after..]);
                    let tail_at = line.len() - tail.len();
                    let word_end =
                        tail_at + tail.iter().position(|&b| b == b' ').unwrap_or(tail.len());
                    let word = &line[tail_at..word_end];
                    let period = (!word.is_empty() && word.iter().all(u8::is_ascii_digit))
                        .then(|| parse_u64(word))
                        .flatten();
                    let rest = if period.is_some() { word_end } else { after };
                    (Some(time), last_start, (after, after), period, rest)
                }
            }
        }
        None => {
            let name = &head[last_start..];
            if !name.iter().any(u8::is_ascii_alphabetic) {
                return None;
            }
            // `comm pid[/tid] [cpu] [period] event:`: the number before the
            // event is the pid, unless it cannot be one (above
            // PID_MAX_LIMIT, 2^22, see proc(5) /proc/sys/kernel/pid_max) or
            // a cpu or pid/tid comes before it. (`comm pid period` with a
            // small period is read as a command name ending in a number.)
            let (period, period_start) = digits_word_before(line, 0, last_start);
            let before = match period {
                Some(p) if p > 1 << 22 || period_context(&line[..period_start]) => period_start,
                _ => last_start,
            };
            let period = period.filter(|_| before == period_start);
            (None, before, (last_start, first), period, first + 1)
        }
    };
    let (comm, pid) = comm_and_pid(&line[..before]);
    if time.is_none() && !pid {
        return None;
    }
    Some(EventLine {
        comm,
        time,
        period,
        name,
        rest: rest.min(line.len()),
    })
}

/// The first `:` at or after `from` that is followed by a space or ends the line.
fn colon_separator(line: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr(b':', &line[at..]) {
        let colon = at + i;
        if colon + 1 == line.len() || line[colon + 1] == b' ' {
            return Some(colon);
        }
        at = colon + 1;
    }
    None
}

/// Start of the last space-separated word of `text` (trailing spaces skipped).
fn word_start(text: &[u8]) -> usize {
    let text = trim_end(text);
    memchr::memrchr(b' ', text).map_or(0, |i| i + 1)
}

/// The all-digit word that ends right before `end` (after spaces), if any,
/// and where it starts; only looks at `line[from..end]`.
fn digits_word_before(line: &[u8], from: usize, end: usize) -> (Option<u64>, usize) {
    let text = trim_end(&line[from..end]);
    let start = word_start(text);
    let word = &text[start..];
    if !word.is_empty() && word.iter().all(u8::is_ascii_digit) {
        (parse_u64(word), from + start)
    } else {
        (None, end)
    }
}

/// Whether `text` ends with a cpu (`[001]`) or a `pid/tid`, which a period
/// may follow.
fn period_context(text: &[u8]) -> bool {
    let text = trim_end(text);
    let word = &text[word_start(text)..];
    is_cpu(word) || (is_pid(word) && word.contains(&b'/'))
}

fn is_pid(word: &[u8]) -> bool {
    !word.is_empty()
        && word[0].is_ascii_digit()
        && word.iter().all(|&b| b.is_ascii_digit() || b == b'/')
        && word.iter().filter(|&&b| b == b'/').count() <= 1
}

fn is_cpu(word: &[u8]) -> bool {
    word.len() > 2
        && word[0] == b'['
        && word[word.len() - 1] == b']'
        && word[1..word.len() - 1].iter().all(u8::is_ascii_digit)
}

/// `comm pid[/tid] [cpu]` → the comm's range, and whether a pid was there.
fn comm_and_pid(text: &[u8]) -> ((usize, usize), bool) {
    let mut end = trim_end(text).len();
    let word = |end: usize| {
        let start = word_start(&text[..end]);
        (start, &text[start..end])
    };
    let (start, last) = word(end);
    if is_cpu(last) {
        end = trim_end(&text[..start]).len();
    }
    let (start, last) = word(end);
    let pid = is_pid(last);
    if pid {
        end = trim_end(&text[..start]).len();
    }
    let comm_start = text.len() - trim_start(text).len();
    ((comm_start.min(end), end), pid)
}

/// `296.427171` or `5000.123456789` → nanoseconds.
fn parse_time(word: &[u8]) -> Option<u64> {
    let dot = memchr::memchr(b'.', word)?;
    let (secs, frac) = (&word[..dot], &word[dot + 1..]);
    if secs.is_empty()
        || frac.is_empty()
        || frac.len() > 9
        || !secs.iter().all(u8::is_ascii_digit)
        || !frac.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let mut nanos = parse_u64(frac)?;
    for _ in frac.len()..9 {
        nanos *= 10;
    }
    parse_u64(secs)?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |n, &b| {
        n.checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))
    })
}

/// One frame line: `ip sym+0xoff (dso)` (see `sample__fprintf_callchain`
/// in tools/perf/util/evsel_fprintf.c: `\t%16lx`, ` sym`, `+0xoff`,
/// ` (dso)` unless the frame is inlined, then ` (inlined)`); `sym` and `dso`
/// may each be missing (`-F ip,dso`, `-F ip,sym`).
#[derive(Debug, PartialEq)]
pub(super) struct Frame<'a> {
    pub(super) sym: &'a [u8],
    pub(super) dso: Option<&'a [u8]>,
    pub(super) inlined: bool,
}

pub(super) fn parse_frame(line: &[u8]) -> Option<Frame<'_>> {
    let line = trim_start(trim_end(line));
    let ip_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let ip = &line[..ip_end];
    if ip.is_empty() || !ip.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let rest = trim_start(&line[ip_end..]);
    let (mut sym, mut dso) = (rest, None);
    if rest.last() == Some(&b')') {
        // the matching `(`: a dso may itself hold one, `(/x.so (deleted))`
        let mut depth = 0usize;
        for i in (0..rest.len()).rev() {
            match rest[i] {
                b')' => depth += 1,
                b'(' => {
                    depth -= 1;
                    if depth == 0 {
                        sym = trim_end(&rest[..i]);
                        dso = Some(&rest[i + 1..rest.len() - 1]);
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    let inlined = dso == Some(&b"inlined"[..]);
    if inlined {
        // an inlined frame carries no dso (see above)
        dso = None;
    }
    Some(Frame { sym, dso, inlined })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parts = Option<(String, Option<u64>, Option<u64>, String)>;

    fn event(line: &str) -> Parts {
        let e = parse_event_line(line.as_bytes())?;
        Some((
            line[e.comm.0..e.comm.1].to_string(),
            e.time,
            e.period,
            line[e.name.0..e.name.1].to_string(),
        ))
    }

    fn some(comm: &str, time: Option<u64>, period: Option<u64>, name: &str) -> Parts {
        Some((comm.to_string(), time, period, name.to_string()))
    }

    #[test]
    fn event_lines_in_every_field_layout() {
        const T: Option<u64> = Some(296_427_171_000);
        // default fields, cpu-clock at 99 Hz
        assert_eq!(
            event("node  9495   296.427171:   10101010 cpu-clock:ppp: "),
            some("node", T, Some(10101010), "cpu-clock:ppp")
        );
        // comm with spaces, pid/tid, cpu, no period
        assert_eq!(
            event("V8 WorkerThread 24636/25607 [000]   296.427171: cycles:"),
            some("V8 WorkerThread", T, None, "cycles")
        );
        // comm with a digit-only word: the pid is the last one
        assert_eq!(
            event("worker 2 24636 [003] 296.427171: 1 cpu-clock:uhH:"),
            some("worker 2", T, Some(1), "cpu-clock:uhH")
        );
        // --ns
        assert_eq!(
            event("node 9495 5000.123456789: 250000 cycles:u:"),
            some("node", Some(5_000_123_456_789), Some(250000), "cycles:u")
        );
        // no time
        assert_eq!(
            event("node 9495 cpu-clock:"),
            some("node", None, None, "cpu-clock")
        );
        assert_eq!(
            event("node 9495 [001] 10101010 cpu-clock:"),
            some("node", None, Some(10101010), "cpu-clock")
        );
        // no pid; no comm
        assert_eq!(
            event("node 296.427171: cpu-clock:"),
            some("node", T, None, "cpu-clock")
        );
        assert_eq!(
            event("  296.427171: 7 page-faults:"),
            some("", T, Some(7), "page-faults")
        );
        // comm padded to 16 (events without call chains), one-line frame
        assert_eq!(
            event(
                "            node  9495 [001]   296.427171: 1 page-faults:  7f3a1c2b foo+0x1 (/lib/x.so)"
            ),
            some("node", T, Some(1), "page-faults")
        );
        // tracepoint with its fields
        assert_eq!(
            event(
                "node 9495 [001] 296.427171: sched:sched_switch: prev_comm=node prev_pid=9495 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120"
            ),
            some("node", T, None, "sched:sched_switch")
        );
        // no event name
        assert_eq!(event("node 9495 296.427171: "), some("node", T, None, ""));
        // a comm cut by the kernel in the middle of a UTF-8 character
        let cut = b"caf\xc3 77 5.5: 3 cpu-clock:\n";
        let e = parse_event_line(cut).unwrap();
        assert_eq!((e.time, e.period), (Some(5_500_000_000), Some(3)));
        for line in [
            "node 9495 no colon here",
            "a;b;c 12",
            "hello world: not an event",
            "\t7f12 foo (/x: y)",
        ] {
            assert_eq!(parse_event_line(line.as_bytes()), None, "{line}");
        }
    }
}
