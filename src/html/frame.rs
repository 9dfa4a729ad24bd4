//! One flamegraph in the page: its SVG as its own document in an
//! `<iframe srcdoc>` (so that inferno's search and zoom work as in the
//! standalone file), escaped whole, sized to the SVG, and with its scripts
//! added to the page's policy.

use std::fmt::Write as _;
use std::path::Path;

use super::csp::Csp;
use super::escape;

/// Makes inferno's `history.replaceState` calls harmless inside a frame
/// without a URL of its own; runs before inferno's script.
const REPLACE_STATE_SHIM: &str = "<script type=\"text/ecmascript\">(function(){var r=history.replaceState;history.replaceState=function(){try{return r.apply(history,arguments)}catch(e){}}})();</script>";

/// The frame document's style (see [`frame_document`]).
const FRAME_STYLE: &str = "html,body{margin:0;padding:0}body>svg{display:block;width:100%}";

/// One flamegraph as its own document in an iframe, sized to the SVG.
pub(super) fn flamegraph(
    h: &mut String,
    id: &str,
    caption: &str,
    svg_path: &Path,
    read: &dyn Fn(&Path) -> Option<String>,
    csp: &mut Csp,
) {
    if !caption.is_empty() {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(caption));
    }
    let Some(svg) = read(svg_path) else {
        let _ = writeln!(
            h,
            "<p class=\"failed\">could not read {}</p>",
            escape(&svg_path.display().to_string())
        );
        return;
    };
    let height = svg_height(&svg).unwrap_or(600) + 4;
    let document = frame_document(&svg);
    csp.svg(&document);
    let name = svg_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(
        h,
        "<iframe class=\"flamegraph\" id=\"{}\" title=\"{}\" data-svg=\"{}\" height=\"{height}\" srcdoc=\"{}\"></iframe>",
        escape(id),
        escape(&name),
        escape(&name),
        escape(&document)
    );
}

/// The frame's document: the SVG inline in a minimal standards-mode HTML
/// page (a `srcdoc` is always parsed as HTML), stretched to the frame's
/// width as inferno's fluid layout expects of a standalone SVG, with
/// [`REPLACE_STATE_SHIM`] as the root's first child, before inferno's script.
fn frame_document(svg: &str) -> String {
    let Some(open) = svg.find("<svg") else {
        return svg.to_string();
    };
    let Some(end) = svg[open..].find('>') else {
        return svg.to_string();
    };
    let at = open + end + 1;
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>{FRAME_STYLE}</style></head><body>{}{REPLACE_STATE_SHIM}{}</body></html>",
        &svg[open..at],
        &svg[at..]
    )
}

/// The `height` of the root `<svg>` element, in pixels.
fn svg_height(svg: &str) -> Option<u32> {
    let open = svg.find("<svg")?;
    let tag = &svg[open..open + svg[open..].find('>')?];
    let start = tag.find(" height=\"")? + " height=\"".len();
    let len = tag[start..].find('"')?;
    tag[start..start + len].parse().ok()
}
