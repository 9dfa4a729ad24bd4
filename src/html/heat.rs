//! A heat map as inline SVG for report.html: one column per second, one row
//! per sub-second slice, darker with more samples (as FlameScope draws it).

use std::fmt::Write as _;

use crate::heatmap::Heatmap;

/// Cell size of the heat map, in pixels.
const CELL_H: usize = 4;
const CELL_W_MAX: usize = 24;
const HEATMAP_W: usize = 900;
const AXIS_H: usize = 16;

/// The heat map as inline SVG: one column per second (left to right), one
/// row per sub-second slice (top to bottom), darker with more samples.
pub(super) fn heatmap(h: &mut String, map: &Heatmap) {
    let columns = map.counts.len().max(1);
    let cell_w = (HEATMAP_W / columns).clamp(2, CELL_W_MAX);
    let (width, height) = (columns * cell_w, map.rows * CELL_H);
    let totals: Vec<String> = map.column_totals().iter().map(u64::to_string).collect();
    let _ = writeln!(
        h,
        "<p class=\"note\">Time slices: one column per second from the first sample ({} s), \
         {} rows of {} ms from the top; darker = more samples (max {} in a slice). \
         Draw one stretch with <code>flamefire render --from S --to S</code>.</p>",
        map.counts.len(),
        map.rows,
        1000 / map.rows.max(1),
        map.max
    );
    let _ = writeln!(
        h,
        "<svg class=\"heatmap\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" \
         data-rows=\"{}\" data-column-totals=\"{}\" role=\"img\" aria-label=\"samples per time slice\">\
         <rect width=\"{width}\" height=\"{height}\" fill=\"#f3f3f3\"/>",
        height + AXIS_H,
        map.rows,
        totals.join(" ")
    );
    let slice_ms = 1000.0 / map.rows.max(1) as f64;
    for (second, column) in map.counts.iter().enumerate() {
        for (row, &count) in column.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let from = second as f64 + row as f64 * slice_ms / 1000.0;
            let _ = write!(
                h,
                "<rect x=\"{}\" y=\"{}\" width=\"{cell_w}\" height=\"{CELL_H}\" fill=\"{}\">\
                 <title>{from:.2}–{:.2} s: {count} samples</title></rect>",
                second * cell_w,
                row * CELL_H,
                heat_colour(count, map.max),
                from + slice_ms / 1000.0
            );
        }
    }
    let step = (40 / cell_w).max(1);
    for second in (0..map.counts.len()).step_by(step) {
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">{second}s</text>",
            second * cell_w,
            height + AXIS_H - 4
        );
    }
    h.push_str("</svg>\n");
}

/// Light yellow (few samples) to dark red (the busiest slice), as FlameScope.
fn heat_colour(count: u32, max: u32) -> String {
    let t = if max == 0 {
        0.0
    } else {
        (count as f64 / max as f64).clamp(0.0, 1.0)
    };
    let mix = |from: f64, to: f64| (from + (to - from) * t).round() as u8;
    format!(
        "rgb({},{},{})",
        mix(255.0, 165.0),
        mix(237.0, 15.0),
        mix(160.0, 21.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_map_cells_carry_counts_and_darken_with_them() {
        let map = Heatmap::from_offsets([0.01, 0.011, 2.5], 50);
        let mut h = String::new();
        heatmap(&mut h, &map);
        assert!(h.contains("data-column-totals=\"2 0 1\""), "{h}");
        assert!(h.contains("<title>0.00–0.02 s: 2 samples</title>"), "{h}");
        assert_eq!(
            h.matches("<rect x=").count(),
            2,
            "empty cells are not drawn"
        );
        assert_eq!(heat_colour(2, 2), "rgb(165,15,21)");
        assert_eq!(heat_colour(0, 2), "rgb(255,237,160)");
    }
}
