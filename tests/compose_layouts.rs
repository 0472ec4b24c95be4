//! Layouts on real encoded media, measured: every layout's tiles show each stream's colour
//! where the layout says, also after a join and a leave; a screen share's region and aspect.

mod common;

use common::*;
use mosaic::compose::ComposeOptions;
use mosaic::compose::plan::PlanOptions;
use mosaic::layout::{CustomLayout, Layout};
use mosaic::sample::{ArchiveSpec, ContainerKind};

/// Four streams in four colours: c leaves at 4000, d joins at 2000.
fn four_spec() -> ArchiveSpec {
    archive(
        "four",
        ContainerKind::Webm,
        vec![
            stream("a", [220, 40, 40], vec![], vec![segment(0, 6_000)]),
            stream("b", [40, 200, 40], vec![], vec![segment(0, 6_000)]),
            stream("c", [40, 40, 220], vec![], vec![segment(0, 4_000)]),
            stream("d", [230, 220, 40], vec![], vec![segment(2_000, 6_000)]),
        ],
    )
}

/// A stream index and a point (fractions of the canvas) where its colour should show.
type Spot = (usize, f64, f64);

/// Checks that at `ms` each stream shows its colour at its spot.
fn tiles_at(d: &Decoded, ms: f64, expect: &[Spot], what: &str) {
    let i = d.frame_at(ms);
    for &(s, fx, fy) in expect {
        is_colour(
            d.rgb_at(i, fx, fy),
            COLOURS[s],
            &format!("{what} at {ms} ms, stream {s}"),
        );
    }
}

#[test]
fn best_fit_regrids_on_join_and_leave() {
    let (_dir, out, _) = compose_sample(&four_spec(), "grid.mp4", &small());
    let d = decode(&out);
    // 0..2000: a, b, c: two on top, one centred below.
    tiles_at(
        &d,
        1_000.0,
        &[(0, 0.25, 0.25), (1, 0.75, 0.25), (2, 0.5, 0.75)],
        "three",
    );
    // 2000..4000: d joins: a 2x2 grid.
    tiles_at(
        &d,
        3_000.0,
        &[
            (0, 0.25, 0.25),
            (1, 0.75, 0.25),
            (2, 0.25, 0.75),
            (3, 0.75, 0.75),
        ],
        "four",
    );
    // 4000..6000: c leaves: a, b, d.
    tiles_at(
        &d,
        5_000.0,
        &[(0, 0.25, 0.25), (1, 0.75, 0.25), (3, 0.5, 0.75)],
        "three again",
    );
}

#[test]
fn presentation_pip_and_custom_layouts() {
    let spec = four_spec();
    let at = 3_000.0; // all four present
    let cases: Vec<(Layout, Vec<Spot>)> = vec![
        // a large on the left (4/5), the others in a column on the right.
        (
            Layout::VerticalPresentation,
            vec![
                (0, 0.4, 0.5),
                (1, 0.9, 1.0 / 6.0),
                (2, 0.9, 0.5),
                (3, 0.9, 5.0 / 6.0),
            ],
        ),
        // a large on top, the others in a row below.
        (
            Layout::HorizontalPresentation,
            vec![
                (0, 0.5, 0.4),
                (1, 1.0 / 6.0, 0.9),
                (2, 0.5, 0.9),
                (3, 5.0 / 6.0, 0.9),
            ],
        ),
        // a on the whole canvas, insets along the bottom from the right.
        (Layout::Pip, vec![(0, 0.3, 0.3), (1, 0.86, 0.85)]),
        (
            Layout::Custom(
                CustomLayout::parse(
                    r#"{"regions":[{"x":0,"y":0,"w":0.5,"h":1,"stream":"d"},
                       {"x":0.5,"y":0,"w":0.5,"h":0.5,"role":"camera"},
                       {"x":0.5,"y":0.5,"w":0.5,"h":0.5,"role":"any"}]}"#,
                )
                .unwrap(),
            ),
            vec![(3, 0.25, 0.5), (0, 0.75, 0.25), (1, 0.75, 0.75)],
        ),
    ];
    for (layout, expect) in cases {
        let what = format!("{layout:?}").chars().take(24).collect::<String>();
        let opts = ComposeOptions {
            plan: PlanOptions {
                layout,
                ..small().plan
            },
            ..small()
        };
        let (_dir, out, _) = compose_sample(&spec, "layout.mp4", &opts);
        tiles_at(&decode(&out), at, &expect, &what);
    }
}

#[test]
fn screen_share_gets_the_large_region_and_keeps_its_aspect() {
    let mut screen = stream("scr", [40, 40, 220], vec![], vec![segment(0, 3_000)]);
    screen.video_type = "screen".into();
    screen.width = 320;
    screen.height = 120; // wide: letterboxed in its region
    let spec = archive(
        "screen",
        ContainerKind::Webm,
        vec![
            stream("cam", [220, 40, 40], vec![], vec![segment(0, 3_000)]),
            screen,
        ],
    );
    let (_dir, out, _) = compose_sample(&spec, "screen.mp4", &small());
    let d = decode(&out);
    let i = d.frame_at(1_500.0);
    // The screen's region is the left 4/5 (512x480); a 320x120 picture fills 512x192 of it.
    is_colour(d.rgb_at(i, 0.4, 0.5), [40, 40, 220], "screen centre");
    is_colour(
        d.rgb_at(i, 0.4, 0.1),
        [0, 0, 0],
        "letterbox above the screen",
    );
    is_colour(d.rgb_at(i, 0.9, 0.5), [220, 40, 40], "camera beside it");
}
