//! A frame's name in the flamegraph, as `inferno-collapse-perf --jit
//! --kernel` names it: offsets and argument lists dropped, `[unknown]`
//! replaced by `[dso]`, and `_[k]` / `_[j]` / `_[i]` for kernel, JIT and
//! inlined frames (with the differences listed in `collapse`'s docs).

use super::script::Frame;

/// Appends the flamegraph names of one frame line to `names` (leaf first;
/// `a->b` Java inlining gives two names, `b` being the leaf).
pub(super) fn push_frame_names(
    frame: &Frame<'_>,
    java: bool,
    names: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) {
    let mut sym = frame.sym;
    // `func+0x1f` → `func`
    if let Some(plus) = memchr::memrchr(b'+', sym) {
        let offset = &sym[plus + 1..];
        if offset.len() > 2
            && offset.starts_with(b"0x")
            && offset[2..].iter().all(u8::is_ascii_hexdigit)
        {
            sym = &sym[..plus];
        }
    }
    let dso = frame
        .dso
        .map(|d| d.strip_suffix(b" (deleted)").unwrap_or(d));
    if sym.is_empty() || sym == b"[unknown]" {
        // inferno's fallback: the dso's file name, bracketed
        match dso {
            Some(dso) if dso != b"[unknown]" && !is_perf_map(dso) => {
                let base = memchr::memrchr(b'/', dso).map_or(dso, |i| &dso[i + 1..]);
                // `[kernel.kallsyms]` is bracketed already
                if base.starts_with(b"[") && base.ends_with(b"]") {
                    names.extend_from_slice(base);
                } else {
                    names.push(b'[');
                    names.extend_from_slice(base);
                    names.push(b']');
                }
            }
            _ => names.extend_from_slice(b"[unknown]"),
        }
        annotate(dso, frame.inlined, false, names);
        ends.push(names.len());
        return;
    }
    // Java inlining (perf-map-agent's `unfoldall`): `caller->callee` in a
    // perf map, the callees marked inlined; pushed leaf first like the rest.
    // (Elsewhere `->` is C++'s `operator->`, not a split.)
    if dso.is_some_and(is_jit) && memchr::memmem::find(sym, b"->").is_some() {
        let parts: Vec<&[u8]> = split_arrows(sym);
        for (i, part) in parts.iter().enumerate().rev() {
            push_symbol(part, java, names);
            annotate(dso, frame.inlined, i > 0, names);
            ends.push(names.len());
        }
        return;
    }
    push_symbol(sym, java, names);
    annotate(dso, frame.inlined, false, names);
    ends.push(names.len());
}

fn split_arrows(sym: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = sym;
    while let Some(i) = memchr::memmem::find(rest, b"->") {
        parts.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    parts.push(rest);
    parts
}

/// A symbol as inferno's `tidy_generic` and `tidy_java` leave it: `;`
/// becomes `:` (it separates frames), and a top-level argument list is
/// dropped, except Go's `pkg.(*T).f` and C++'s `(anonymous namespace)`.
fn push_symbol(sym: &[u8], java: bool, names: &mut Vec<u8>) {
    let mut sym = sym;
    if java && sym.first() == Some(&b'L') && memchr::memchr(b'/', sym).is_some() {
        sym = &sym[1..];
    }
    if memchr::memchr(b'(', sym).is_some() {
        let mut depth = 0i32;
        let mut last_dot = None;
        for (i, &b) in sym.iter().enumerate() {
            match b {
                b'<' | b'{' | b'[' => depth += 1,
                b'>' | b'}' | b']' | b')' => depth -= 1,
                b'(' => {
                    if depth == 0
                        && last_dot != Some(i)
                        && !sym[i..].starts_with(b"(anonymous namespace)")
                    {
                        sym = &sym[..i];
                        break;
                    }
                    depth += 1;
                }
                b'.' => last_dot = Some(i + 1),
                _ => {}
            }
        }
    }
    let start = names.len();
    names.extend_from_slice(sym);
    if memchr::memchr(b';', sym).is_some() {
        for b in &mut names[start..] {
            if *b == b';' {
                *b = b':';
            }
        }
    }
}

/// inferno's annotations: `_[i]` inlined, else `_[k]` kernel, else `_[j]` JIT.
fn annotate(dso: Option<&[u8]>, inlined: bool, java_inlined: bool, names: &mut Vec<u8>) {
    if inlined || java_inlined {
        names.extend_from_slice(b"_[i]");
    } else if dso.is_some_and(is_kernel) {
        names.extend_from_slice(b"_[k]");
    } else if dso.is_some_and(is_jit) {
        names.extend_from_slice(b"_[j]");
    }
}

/// `[kernel.kallsyms]`, `[nf_conntrack]`, `x.ko`, `…/vmlinux-5.4` (inferno's `is_kernel`).
fn is_kernel(dso: &[u8]) -> bool {
    if dso == b"[unknown]" {
        return false;
    }
    if dso.first() == Some(&b'[') || dso.ends_with(b".ko") {
        return true;
    }
    // the last `vmlinux`, followed only by a version-like suffix
    memchr::memrchr_iter(b'v', dso)
        .find(|&at| dso[at..].starts_with(b"vmlinux"))
        .is_some_and(|at| {
            dso[at..]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        })
}

/// `/tmp/perf-<pid>.map` (perf map files) or `…/jitted-<pid>-<n>.so` (jitdump).
fn is_jit(dso: &[u8]) -> bool {
    is_perf_map(dso) || (dso.ends_with(b".so") && memchr::memmem::find(dso, b"/jitted-").is_some())
}

fn is_perf_map(dso: &[u8]) -> bool {
    dso.starts_with(b"/tmp/perf-") && dso.ends_with(b".map")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collapse::script::parse_frame;

    fn names(line: &str, java: bool) -> Vec<String> {
        let frame = parse_frame(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
        let (mut names, mut ends) = (Vec::new(), Vec::new());
        push_frame_names(&frame, java, &mut names, &mut ends);
        let mut start = 0;
        ends.iter()
            .map(|&end| {
                let name = String::from_utf8(names[start..end].to_vec()).unwrap();
                start = end;
                name
            })
            .collect()
    }

    #[test]
    fn frames_are_named_like_inferno() {
        let one = |line: &str| names(line, false).join(" | ");
        assert_eq!(
            one("\t    7f5b867c66e2 JS:*tokenizeHtml /app/work.js:1:22+0x322 (/tmp/perf-9495.map)"),
            "JS:*tokenizeHtml /app/work.js:1:22_[j]"
        );
        assert_eq!(
            one("\tffffffff8103ce3b native_safe_halt+0xb ([kernel.kallsyms])"),
            "native_safe_halt_[k]"
        );
        assert_eq!(
            one("7f533952bc77 _dl_map+0x597 (/usr/lib/ld-2.28.so)"),
            "_dl_map",
            "unindented"
        );
        assert_eq!(one("    7f53389994d0 [unknown] ([unknown])"), "[unknown]");
        assert_eq!(
            one("\t7f53389994d0 [unknown] (/usr/lib/libc.so.6)"),
            "[libc.so.6]"
        );
        assert_eq!(
            one("\t7f9f4a7c6d69 [unknown] (/tmp/perf-1234.map)"),
            "[unknown]_[j]"
        );
        assert_eq!(
            one("\t7f1e2215d058  (/lib/x86_64-linux-gnu/libc-2.15.so)"),
            "[libc-2.15.so]"
        );
        assert_eq!(
            one("\t7f12 handler+0x10 (/opt/app/lib.so (deleted))"),
            "handler"
        );
        assert_eq!(
            one("\t7f12 [unknown] (/opt/app/lib.so (deleted))"),
            "[lib.so]"
        );
        assert_eq!(one("\t55d5e0a1b2c3 inner_fn (inlined)"), "inner_fn_[i]");
        assert_eq!(
            one("\t55d5e0a1b2c3 v8::internal::Runtime_X(int, unsigned long*)+0x2a (/usr/bin/node)"),
            "v8::internal::Runtime_X"
        );
        assert_eq!(
            one("\t55d5e0a1b2c3 net/http.(*Client).Do+0x2a (/app/go)"),
            "net/http.(*Client).Do"
        );
        assert_eq!(
            one("\t55d5e0a1b2c3 (anonymous namespace)::f() (/app/cc)"),
            "(anonymous namespace)::f"
        );
        assert_eq!(one("\t55d5e0a1b2c3 a;b (/app/x)"), "a:b");
        assert_eq!(one("\t55d5e0a1b2c3"), "[unknown]", "-F ip only");
        assert_eq!(
            one("\tffffffff8103ce3b ([kernel.kallsyms])"),
            "[kernel.kallsyms]_[k]",
            "-F ip,dso"
        );
        assert_eq!(one("\t55d5e0a1b2c3 main"), "main", "-F ip,sym");
        assert_eq!(
            one("\t8c3453 tcp_sendmsg (/lib/modules/4.3.0/build/vmlinux)"),
            "tcp_sendmsg_[k]"
        );
        // Java: perf-map-agent's inlining and class names
        assert_eq!(
            names(
                "\t7f722d142778 Lcom/A;::run->Lcom/B;::call (/tmp/perf-19982.map)",
                true
            ),
            ["com/B:::call_[i]", "com/A:::run_[j]"].map(String::from)
        );
        assert_eq!(parse_frame(b"node 9495 1.0: cpu-clock:"), None);
        assert_eq!(parse_frame(b"  cluster.js:100"), None);
    }
}
