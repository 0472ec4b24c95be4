//! Where each stream's tile goes on the canvas (pure, no I/O).
//!
//! The layouts of the composed-archive documentation and more: `bestFit` (a grid), `pip`
//! (one full-canvas tile, the others as small insets), `verticalPresentation` (a large
//! region on the left, a column of the others on the right), `horizontalPresentation` (a
//! large region on top, a row below) and `custom` (regions from a JSON file). With a screen
//! share present, the screen takes the large region; `bestFit` then behaves like
//! `verticalPresentation`. Tiles are regions: the picture is fitted inside keeping its
//! aspect ratio (see [`fit`]).

pub mod speaker;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A rectangle in canvas pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub fn new(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect { x, y, w, h }
    }

    pub fn center(&self) -> (i32, i32) {
        (self.x + self.w / 2, self.y + self.h / 2)
    }

    pub fn contains(&self, x: i32, y: i32) -> bool {
        x >= self.x && x < self.x + self.w && y >= self.y && y < self.y + self.h
    }
}

/// A stream asking for a tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileRequest {
    pub stream_id: String,
    /// A screen share (the manifest's `videoType: screen`).
    pub screen: bool,
}

/// A tile: where a stream goes and in which order tiles are stacked (higher is on top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub rect: Rect,
    pub z: u32,
}

/// A region of a custom layout, in fractions of the canvas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRegion {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    #[serde(default)]
    pub z: u32,
    /// The stream that goes here, by id.
    #[serde(default)]
    pub stream: Option<String>,
    /// Or the first stream of a role not placed yet: `screen`, `camera` or `any`.
    #[serde(default)]
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Screen,
    Camera,
    Any,
}

/// A custom layout file: `{"regions": [{"x":0,"y":0,"w":0.5,"h":1,"z":0,"role":"any"}, …]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomLayout {
    pub regions: Vec<CustomRegion>,
}

impl CustomLayout {
    pub fn parse(json: &str) -> Result<CustomLayout> {
        let layout: CustomLayout = serde_json::from_str(json)
            .map_err(|e| Error::InvalidOption(format!("custom layout: {e}")))?;
        for (i, r) in layout.regions.iter().enumerate() {
            let ok = |v: f64| (0.0..=1.0).contains(&v);
            if !(ok(r.x) && ok(r.y) && ok(r.w) && ok(r.h)) || r.w <= 0.0 || r.h <= 0.0 {
                return Err(Error::InvalidOption(format!(
                    "custom layout: regions[{i}] must have x, y in 0..1 and w, h in (0, 1]"
                )));
            }
            if r.stream.is_none() && r.role.is_none() {
                return Err(Error::InvalidOption(format!(
                    "custom layout: regions[{i}] names neither a stream nor a role"
                )));
            }
        }
        Ok(layout)
    }
}

/// Which layout to use.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    BestFit,
    Pip,
    VerticalPresentation,
    HorizontalPresentation,
    Custom(CustomLayout),
    /// The current speaker in the main region, chosen with hindsight from everybody's speech
    /// ([`speaker`]); the shots are filled in by compose once it knows who spoke when (empty:
    /// not yet, and arranged as `bestFit`).
    Speaker(Vec<speaker::Shot>),
}

impl Layout {
    /// The built-in layout of a name (`bestFit`, `pip`, `verticalPresentation`,
    /// `horizontalPresentation`, `speaker`, any case); `custom` needs its regions, so it is not one.
    pub fn named(name: &str) -> Option<Layout> {
        match name.to_ascii_lowercase().as_str() {
            "bestfit" => Some(Layout::BestFit),
            "pip" => Some(Layout::Pip),
            "verticalpresentation" => Some(Layout::VerticalPresentation),
            "horizontalpresentation" => Some(Layout::HorizontalPresentation),
            "speaker" => Some(Layout::Speaker(Vec::new())),
            _ => None,
        }
    }

    /// Tiles for `requests` (in their order; `None` for a stream that gets no tile) on a
    /// `width` x `height` canvas.
    pub fn arrange(&self, width: i32, height: i32, requests: &[TileRequest]) -> Vec<Option<Tile>> {
        let n = requests.len();
        if n == 0 {
            return vec![];
        }
        // The stream that gets the large region of a presentation layout: the first screen
        // share, else the first stream.
        let focus = requests.iter().position(|r| r.screen);
        match self {
            // Without shots (nobody spoke): the grid. With them, see `speaker::arrange`,
            // which needs the time.
            Layout::BestFit | Layout::Speaker(_) => match focus {
                Some(f) if n > 1 => presentation(width, height, n, f, true),
                _ => grid(width, height, n),
            },
            Layout::Pip => pip(width, height, n, focus.unwrap_or(0)),
            Layout::VerticalPresentation => {
                presentation(width, height, n, focus.unwrap_or(0), true)
            }
            Layout::HorizontalPresentation => {
                presentation(width, height, n, focus.unwrap_or(0), false)
            }
            Layout::Custom(c) => custom(c, width, height, requests),
        }
    }
}

/// A grid of `cols = ceil(sqrt(n))` columns, centred rows; the last row's tiles centred too.
fn grid(width: i32, height: i32, n: usize) -> Vec<Option<Tile>> {
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let (tw, th) = (width / cols as i32, height / rows as i32);
    (0..n)
        .map(|i| {
            let (row, col) = (i / cols, i % cols);
            let in_row = if row == rows - 1 {
                n - row * cols
            } else {
                cols
            };
            let x0 = (width - tw * in_row as i32) / 2;
            Some(Tile {
                rect: Rect::new(x0 + tw * col as i32, th * row as i32, tw, th),
                z: 0,
            })
        })
        .collect()
}

/// The focus stream on the whole canvas, the others as insets (a quarter of each side)
/// along the bottom, from the right, above it.
fn pip(width: i32, height: i32, n: usize, focus: usize) -> Vec<Option<Tile>> {
    let (iw, ih) = (width / 4, height / 4);
    let margin = (width / 64).max(4);
    let mut k = 0;
    (0..n)
        .map(|i| {
            if i == focus {
                return Some(Tile {
                    rect: Rect::new(0, 0, width, height),
                    z: 0,
                });
            }
            k += 1;
            Some(Tile {
                rect: Rect::new(width - (iw + margin) * k, height - ih - margin, iw, ih),
                z: 1,
            })
        })
        .collect()
}

/// The focus stream in a large region (left, or top), the others sharing a strip of a fifth
/// of the canvas (right column, or bottom row).
fn presentation(
    width: i32,
    height: i32,
    n: usize,
    focus: usize,
    vertical: bool,
) -> Vec<Option<Tile>> {
    if n == 1 {
        return vec![Some(Tile {
            rect: Rect::new(0, 0, width, height),
            z: 0,
        })];
    }
    let others = (n - 1) as i32;
    let mut k = 0;
    (0..n)
        .map(|i| {
            let rect = if vertical {
                let strip = width / 5;
                if i == focus {
                    Rect::new(0, 0, width - strip, height)
                } else {
                    let h = height / others.max(1);
                    let r = Rect::new(width - strip, h * k, strip, h);
                    k += 1;
                    r
                }
            } else {
                let strip = height / 5;
                if i == focus {
                    Rect::new(0, 0, width, height - strip)
                } else {
                    let w = width / others.max(1);
                    let r = Rect::new(w * k, height - strip, w, strip);
                    k += 1;
                    r
                }
            };
            Some(Tile { rect, z: 0 })
        })
        .collect()
}

fn custom(
    layout: &CustomLayout,
    width: i32,
    height: i32,
    requests: &[TileRequest],
) -> Vec<Option<Tile>> {
    let mut out: Vec<Option<Tile>> = vec![None; requests.len()];
    let to_tile = |r: &CustomRegion| Tile {
        rect: Rect::new(
            (r.x * f64::from(width)).round() as i32,
            (r.y * f64::from(height)).round() as i32,
            (r.w * f64::from(width)).round() as i32,
            (r.h * f64::from(height)).round() as i32,
        ),
        z: r.z,
    };
    // Regions naming a stream first, then roles in region order.
    for region in layout.regions.iter().filter(|r| r.stream.is_some()) {
        if let Some(i) = requests
            .iter()
            .position(|q| Some(&q.stream_id) == region.stream.as_ref())
        {
            out[i] = Some(to_tile(region));
        }
    }
    for region in layout.regions.iter().filter(|r| r.stream.is_none()) {
        let wanted = |q: &TileRequest| match region.role {
            Some(Role::Screen) => q.screen,
            Some(Role::Camera) => !q.screen,
            _ => true,
        };
        let explicitly_placed = |q: &TileRequest| {
            layout
                .regions
                .iter()
                .any(|r| r.stream.as_ref() == Some(&q.stream_id))
        };
        if let Some(i) = (0..requests.len())
            .find(|&i| out[i].is_none() && wanted(&requests[i]) && !explicitly_placed(&requests[i]))
        {
            out[i] = Some(to_tile(region));
        }
    }
    out
}

/// The rectangle a `src_w` x `src_h` picture fills inside `region`, keeping its aspect ratio
/// (letterbox or pillarbox), centred.
pub fn fit(region: Rect, src_w: u32, src_h: u32) -> Rect {
    if src_w == 0 || src_h == 0 {
        return region;
    }
    let (rw, rh) = (i64::from(region.w), i64::from(region.h));
    let (sw, sh) = (i64::from(src_w), i64::from(src_h));
    let (w, h) = if rw * sh > rh * sw {
        (rh * sw / sh, rh)
    } else {
        (rw, rw * sh / sw)
    };
    Rect::new(
        region.x + ((rw - w) / 2) as i32,
        region.y + ((rh - h) / 2) as i32,
        w as i32,
        h as i32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(n: usize, screen: Option<usize>) -> Vec<TileRequest> {
        (0..n)
            .map(|i| TileRequest {
                stream_id: format!("s{i}"),
                screen: Some(i) == screen,
            })
            .collect()
    }

    fn rects(tiles: Vec<Option<Tile>>) -> Vec<Rect> {
        tiles.into_iter().map(|t| t.unwrap().rect).collect()
    }

    fn no_overlap(r: &[Rect]) {
        for (i, a) in r.iter().enumerate() {
            for b in &r[i + 1..] {
                let apart =
                    a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn best_fit_grids() {
        assert_eq!(
            rects(Layout::BestFit.arrange(1280, 720, &req(1, None))),
            [Rect::new(0, 0, 1280, 720)]
        );
        assert_eq!(
            rects(Layout::BestFit.arrange(1280, 720, &req(2, None))),
            [Rect::new(0, 0, 640, 720), Rect::new(640, 0, 640, 720)]
        );
        let four = rects(Layout::BestFit.arrange(1280, 720, &req(4, None)));
        assert_eq!(
            four,
            [
                Rect::new(0, 0, 640, 360),
                Rect::new(640, 0, 640, 360),
                Rect::new(0, 360, 640, 360),
                Rect::new(640, 360, 640, 360)
            ]
        );
        // Three: two on top, one centred below.
        let three = rects(Layout::BestFit.arrange(1280, 720, &req(3, None)));
        assert_eq!(three[2], Rect::new(320, 360, 640, 360));
        for n in 1..=16 {
            let r = rects(Layout::BestFit.arrange(1920, 1080, &req(n, None)));
            assert_eq!(r.len(), n);
            no_overlap(&r);
            assert!(
                r.iter()
                    .all(|t| t.x >= 0 && t.y >= 0 && t.x + t.w <= 1920 && t.y + t.h <= 1080)
            );
        }
    }

    #[test]
    fn screen_share_takes_the_large_region() {
        let r = rects(Layout::BestFit.arrange(1280, 720, &req(3, Some(2))));
        assert_eq!(r[2], Rect::new(0, 0, 1024, 720));
        assert_eq!(r[0], Rect::new(1024, 0, 256, 360));
        assert_eq!(r[1], Rect::new(1024, 360, 256, 360));
        no_overlap(&r);
    }

    #[test]
    fn presentations_and_pip() {
        let h = rects(Layout::HorizontalPresentation.arrange(1280, 720, &req(3, None)));
        assert_eq!(h[0], Rect::new(0, 0, 1280, 576));
        assert_eq!(h[1], Rect::new(0, 576, 640, 144));
        assert_eq!(h[2], Rect::new(640, 576, 640, 144));
        let v = rects(Layout::VerticalPresentation.arrange(1280, 720, &req(2, None)));
        assert_eq!(
            v,
            [Rect::new(0, 0, 1024, 720), Rect::new(1024, 0, 256, 720)]
        );
        let p = Layout::Pip.arrange(1280, 720, &req(3, None));
        let p0 = p[0].unwrap();
        assert_eq!((p0.rect, p0.z), (Rect::new(0, 0, 1280, 720), 0));
        let (a, b) = (p[1].unwrap(), p[2].unwrap());
        assert_eq!((a.z, a.rect.w, a.rect.h), (1, 320, 180));
        assert!(a.rect.x + a.rect.w <= 1280 && a.rect.y + a.rect.h <= 720);
        assert!(b.rect.x + b.rect.w <= a.rect.x, "insets side by side");
    }

    #[test]
    fn custom_regions_by_stream_and_role() {
        let c = CustomLayout::parse(
            r#"{"regions":[
                {"x":0,"y":0,"w":0.5,"h":1,"role":"screen","z":1},
                {"x":0.5,"y":0,"w":0.5,"h":0.5,"stream":"s2"},
                {"x":0.5,"y":0.5,"w":0.5,"h":0.5,"role":"camera"}]}"#,
        )
        .unwrap();
        let t = Layout::Custom(c).arrange(1000, 500, &req(4, Some(3)));
        assert_eq!(t[3].unwrap().rect, Rect::new(0, 0, 500, 500));
        assert_eq!(t[3].unwrap().z, 1);
        assert_eq!(t[2].unwrap().rect, Rect::new(500, 0, 500, 250));
        assert_eq!(t[0].unwrap().rect, Rect::new(500, 250, 500, 250));
        assert_eq!(t[1], None, "no region left for s1");
        for bad in [
            r#"{"regions":[{"x":0,"y":0,"w":2,"h":1,"role":"any"}]}"#,
            r#"{"regions":[{"x":0,"y":0,"w":1,"h":1}]}"#,
            r#"{"regions":[{"x":0,"y":0,"w":1,"h":1,"role":"boss"}]}"#,
            r#"not json"#,
        ] {
            assert!(CustomLayout::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fit_keeps_aspect_ratio() {
        let region = Rect::new(0, 0, 640, 360);
        assert_eq!(fit(region, 640, 480), Rect::new(80, 0, 480, 360)); // pillarbox
        assert_eq!(fit(region, 1920, 1080), region);
        assert_eq!(
            fit(Rect::new(10, 10, 400, 400), 1280, 720),
            Rect::new(10, 97, 400, 225)
        ); // letterbox
        assert_eq!(fit(region, 0, 0), region);
    }
}
