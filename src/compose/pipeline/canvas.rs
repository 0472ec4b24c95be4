//! `mosaiccanvas`: lays opaque I420 tiles on the output frame (an element mosaic registers
//! inside its own binary, in place of GStreamer's `compositor`).
//!
//! Every tile of a compose arrives already scaled and letterboxed to its place (see
//! `mosaicletterbox`), so composing is copying rows. GStreamer's `compositor` also clears the
//! whole frame to black before it draws, unless a single layer covers all of it: with a grid
//! of tiles that is a second write of every pixel (3 MB a frame at 1920x1080), and it splits
//! the work across a thread pool that has to be woken for every frame. Here only what no tile
//! covers is painted black, on the aggregator's own thread.
//!
//! Pads take the `compositor`'s property names: `xpos`, `ypos`, `width`, `height` (0: the
//! frame's own size), `alpha` (0 hides the layer; any other value draws it opaque) and the
//! base class's `zorder`. A frame that does not match its pad's size (a frame or two around a
//! layout change, or a placeholder) is letterboxed to it first, or stretched to fill it if the
//! pad's `stretch` is set.

use std::sync::{LazyLock, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::letterbox::{Placement, letterbox_frame, place};

/// The element's factory name.
pub(super) const FACTORY: &str = "mosaiccanvas";

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        FACTORY,
        gst::DebugColorFlags::empty(),
        Some("mosaic's tile compositor"),
    )
});

/// Registers the element with GStreamer (once per process; later calls do nothing).
pub(super) fn register() -> Result<(), glib::BoolError> {
    gst::Element::register(None, FACTORY, gst::Rank::NONE, Canvas::static_type())
}

glib::wrapper! {
    pub struct Canvas(ObjectSubclass<imp::Canvas>)
        @extends gst_video::VideoAggregator, gstreamer_base::Aggregator, gst::Element, gst::Object;
}

glib::wrapper! {
    pub struct CanvasPad(ObjectSubclass<imp::CanvasPad>)
        @extends gst_video::VideoAggregatorPad, gstreamer_base::AggregatorPad, gst::Pad, gst::Object;
}

/// Black in limited-range YUV, per plane.
const BLACK: [u8; 3] = [16, 128, 128];

/// A rectangle of one plane, in that plane's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

/// Where a `w`x`h` picture placed at (`x`, `y`) lands inside a `plane_w`x`plane_h` plane:
/// the visible part, and the offset of that part inside the picture. `None` if nothing shows.
fn clip(
    (x, y): (i64, i64),
    (w, h): (usize, usize),
    (plane_w, plane_h): (usize, usize),
) -> Option<(Rect, (usize, usize))> {
    let x0 = x.max(0);
    let y0 = y.max(0);
    let x1 = (x + w as i64).min(plane_w as i64);
    let y1 = (y + h as i64).min(plane_h as i64);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let rect = Rect {
        x: x0 as usize,
        y: y0 as usize,
        w: (x1 - x0) as usize,
        h: (y1 - y0) as usize,
    };
    Some((rect, ((x0 - x) as usize, (y0 - y) as usize)))
}

/// Paints with `value` every pixel of a plane that none of `covered` covers. `spans` is
/// scratch space (kept by the caller so that a frame allocates nothing).
fn fill_uncovered(
    plane: &mut [u8],
    stride: usize,
    (width, height): (usize, usize),
    covered: &[Rect],
    value: u8,
    spans: &mut Vec<(usize, usize)>,
) {
    for row in 0..height {
        let Some(line) = plane.get_mut(row * stride..row * stride + width) else {
            return;
        };
        spans.clear();
        spans.extend(
            covered
                .iter()
                .filter(|r| row >= r.y && row < r.y + r.h)
                .map(|r| (r.x, (r.x + r.w).min(width))),
        );
        spans.sort_unstable();
        let mut x = 0;
        for &(start, end) in spans.iter() {
            if start > x {
                line[x..start].fill(value);
            }
            x = x.max(end);
        }
        if x < width {
            line[x..].fill(value);
        }
    }
}

/// Copies `src` (its visible part, see [`clip`]) into `out` at (`x`, `y`), and adds what it
/// covers of each plane to `covered`.
fn blit(
    out: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    src: &gst_video::VideoFrameRef<&gst::BufferRef>,
    (x, y): (i64, i64),
    covered: &mut [Vec<Rect>; 3],
) -> Result<(), gst::FlowError> {
    let (out_w, out_h) = (out.width() as usize, out.height() as usize);
    let (src_w, src_h) = (src.width() as usize, src.height() as usize);
    for (i, covered) in covered.iter_mut().enumerate() {
        let (pos, size, plane) = if i == 0 {
            ((x, y), (src_w, src_h), (out_w, out_h))
        } else {
            (
                (x.div_euclid(2), y.div_euclid(2)),
                (src_w.div_ceil(2), src_h.div_ceil(2)),
                (out_w.div_ceil(2), out_h.div_ceil(2)),
            )
        };
        let Some((rect, (sx, sy))) = clip(pos, size, plane) else {
            return Ok(());
        };
        let src_stride = src.plane_stride()[i] as usize;
        let out_stride = out.plane_stride()[i] as usize;
        let from = src
            .plane_data(i as u32)
            .map_err(|_| gst::FlowError::Error)?;
        let to = out
            .plane_data_mut(i as u32)
            .map_err(|_| gst::FlowError::Error)?;
        for r in 0..rect.h {
            let s = (sy + r) * src_stride + sx;
            let d = (rect.y + r) * out_stride + rect.x;
            let (Some(s), Some(d)) = (from.get(s..s + rect.w), to.get_mut(d..d + rect.w)) else {
                return Err(gst::FlowError::Error);
            };
            d.copy_from_slice(s);
        }
        covered.push(rect);
    }
    Ok(())
}

mod imp {
    use super::*;
    use gst::subclass::prelude::*;
    use gst_video::subclass::prelude::*;

    /// Kept between frames so that drawing one allocates nothing.
    #[derive(Default)]
    struct Scratch {
        /// Per plane, what the tiles drawn so far cover.
        covered: [Vec<Rect>; 3],
        /// The filler's spans of one row.
        spans: Vec<(usize, usize)>,
    }

    #[derive(Default)]
    pub struct Canvas {
        scratch: Mutex<Scratch>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Canvas {
        const NAME: &'static str = "MosaicCanvas";
        type Type = super::Canvas;
        type ParentType = gst_video::VideoAggregator;
    }

    impl ObjectImpl for Canvas {}
    impl GstObjectImpl for Canvas {}

    impl ElementImpl for Canvas {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: std::sync::OnceLock<gst::subclass::ElementMetadata> =
                std::sync::OnceLock::new();
            Some(META.get_or_init(|| {
                gst::subclass::ElementMetadata::new(
                    "Tile canvas",
                    "Filter/Editor/Video/Compositor",
                    "Lays opaque I420 tiles on a frame, painting black only what they leave bare",
                    "mosaic",
                )
            }))
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: std::sync::OnceLock<Vec<gst::PadTemplate>> =
                std::sync::OnceLock::new();
            TEMPLATES.get_or_init(|| {
                let caps = gst_video::VideoCapsBuilder::new()
                    .format(gst_video::VideoFormat::I420)
                    .build();
                let src = gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                );
                let sink = gst::PadTemplate::with_gtype(
                    "sink_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &caps,
                    super::CanvasPad::static_type(),
                );
                [src, sink].into_iter().filter_map(Result::ok).collect()
            })
        }
    }

    impl AggregatorImpl for Canvas {
        /// Any I420 frame of any size on every pad (the base class would offer only the
        /// output's size and frame rate).
        fn sink_query(
            &self,
            pad: &gstreamer_base::AggregatorPad,
            query: &mut gst::QueryRef,
        ) -> bool {
            match query.view_mut() {
                gst::QueryViewMut::Caps(q) => {
                    let caps = pad.pad_template_caps();
                    let caps = match q.filter() {
                        Some(filter) => {
                            filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First)
                        }
                        None => caps,
                    };
                    q.set_result(&caps);
                    true
                }
                gst::QueryViewMut::AcceptCaps(q) => {
                    let ok = q.caps().is_subset(&pad.pad_template_caps());
                    q.set_result(ok);
                    true
                }
                _ => self.parent_sink_query(pad, query),
            }
        }
    }

    impl VideoAggregatorImpl for Canvas {
        fn aggregate_frames(
            &self,
            token: &gst_video::subclass::AggregateFramesToken,
            outbuf: &mut gst::BufferRef,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let obj = self.obj();
            let info = obj.video_info().ok_or(gst::FlowError::NotNegotiated)?;
            let mut out = gst_video::VideoFrameRef::from_buffer_ref_writable(outbuf, &info)
                .map_err(|_| gst::FlowError::Error)?;
            let mut scratch = self.scratch.lock().map_err(|_| gst::FlowError::Error)?;
            let Scratch { covered, spans } = &mut *scratch;
            covered.iter_mut().for_each(Vec::clear);
            // The base class keeps the sink pads in z-order, lowest first.
            for pad in obj.sink_pads() {
                let Some(pad) = pad.downcast_ref::<super::CanvasPad>() else {
                    continue;
                };
                let settings = pad.imp().settings();
                if settings.alpha <= 0.0 {
                    continue;
                }
                let Some(frame) = pad.prepared_frame(token) else {
                    continue;
                };
                let pos = (i64::from(settings.xpos), i64::from(settings.ypos));
                blit(&mut out, &frame, pos, covered)?;
            }
            let (w, h) = (out.width() as usize, out.height() as usize);
            for (i, value) in BLACK.iter().enumerate() {
                let size = if i == 0 {
                    (w, h)
                } else {
                    (w.div_ceil(2), h.div_ceil(2))
                };
                let stride = out.plane_stride()[i] as usize;
                let plane = out
                    .plane_data_mut(i as u32)
                    .map_err(|_| gst::FlowError::Error)?;
                fill_uncovered(plane, stride, size, &covered[i], *value, spans);
            }
            Ok(gst::FlowSuccess::Ok)
        }
    }

    /// A layer's place, as the properties set it.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct PadSettings {
        pub xpos: i32,
        pub ypos: i32,
        pub width: i32,
        pub height: i32,
        pub alpha: f64,
        pub stretch: bool,
    }

    impl Default for PadSettings {
        fn default() -> Self {
            PadSettings {
                xpos: 0,
                ypos: 0,
                width: 0,
                height: 0,
                alpha: 1.0,
                stretch: false,
            }
        }
    }

    #[derive(Default)]
    pub struct CanvasPad {
        settings: Mutex<PadSettings>,
    }

    impl CanvasPad {
        pub(super) fn settings(&self) -> PadSettings {
            self.settings.lock().map(|s| *s).unwrap_or_default()
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for CanvasPad {
        const NAME: &'static str = "MosaicCanvasPad";
        type Type = super::CanvasPad;
        type ParentType = gst_video::VideoAggregatorPad;
    }

    impl ObjectImpl for CanvasPad {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: std::sync::OnceLock<Vec<glib::ParamSpec>> = std::sync::OnceLock::new();
            PROPS.get_or_init(|| {
                let int = |name: &str, blurb: &str, min: i32| {
                    glib::ParamSpecInt::builder(name)
                        .blurb(blurb)
                        .minimum(min)
                        .default_value(0)
                        .mutable_playing()
                        .build()
                };
                vec![
                    int("xpos", "Left edge of the layer", i32::MIN),
                    int("ypos", "Top edge of the layer", i32::MIN),
                    int("width", "Width of the layer (0: the frame's own)", 0),
                    int("height", "Height of the layer (0: the frame's own)", 0),
                    glib::ParamSpecDouble::builder("alpha")
                        .blurb("0 hides the layer; any other value draws it opaque")
                        .minimum(0.0)
                        .maximum(1.0)
                        .default_value(1.0)
                        .mutable_playing()
                        .build(),
                    glib::ParamSpecBoolean::builder("stretch")
                        .blurb("Fill the layer, not keeping the frame's aspect ratio")
                        .mutable_playing()
                        .build(),
                ]
            })
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let Ok(mut s) = self.settings.lock() else {
                return;
            };
            match pspec.name() {
                "xpos" => s.xpos = value.get().unwrap_or(s.xpos),
                "ypos" => s.ypos = value.get().unwrap_or(s.ypos),
                "width" => s.width = value.get().unwrap_or(s.width),
                "height" => s.height = value.get().unwrap_or(s.height),
                "alpha" => s.alpha = value.get().unwrap_or(s.alpha),
                "stretch" => s.stretch = value.get().unwrap_or(s.stretch),
                _ => {}
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let s = self.settings();
            match pspec.name() {
                "xpos" => s.xpos.to_value(),
                "ypos" => s.ypos.to_value(),
                "width" => s.width.to_value(),
                "height" => s.height.to_value(),
                "stretch" => s.stretch.to_value(),
                _ => s.alpha.to_value(),
            }
        }
    }

    impl GstObjectImpl for CanvasPad {}
    impl PadImpl for CanvasPad {}
    impl AggregatorPadImpl for CanvasPad {}

    impl VideoAggregatorPadImpl for CanvasPad {
        fn prepare_frame(
            &self,
            aggregator: &gst_video::VideoAggregator,
            token: &gst_video::subclass::AggregateFramesToken,
            buffer: &gst::Buffer,
        ) -> Option<gst_video::VideoFrame<gst_video::video_frame::Readable>> {
            let s = self.settings();
            if s.alpha <= 0.0 {
                return None;
            }
            let info = self.obj().video_info()?;
            let size = |want: i32, own: u32| if want > 0 { want as u32 } else { own };
            let (w, h) = (size(s.width, info.width()), size(s.height, info.height()));
            if (w, h) == (info.width(), info.height()) {
                return self.parent_prepare_frame(aggregator, token, buffer);
            }
            gst::debug!(
                CAT,
                imp = self,
                "letterboxing a {}x{} frame into its {w}x{h} layer",
                info.width(),
                info.height()
            );
            letterboxed(buffer, &info, (w, h), s.stretch)
        }
    }

    /// `buffer` (described by `info`) scaled into a new `w`x`h` frame: stretched to fill it,
    /// or with its aspect kept and black around it.
    fn letterboxed(
        buffer: &gst::Buffer,
        info: &gst_video::VideoInfo,
        (w, h): (u32, u32),
        stretch: bool,
    ) -> Option<gst_video::VideoFrame<gst_video::video_frame::Readable>> {
        let out_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, w, h)
            .colorimetry(&info.colorimetry())
            .chroma_site(info.chroma_site())
            .build()
            .ok()?;
        let mut out = gst::Buffer::with_size(out_info.size()).ok()?;
        {
            let src = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info).ok()?;
            let mut dst =
                gst_video::VideoFrameRef::from_buffer_ref_writable(out.get_mut()?, &out_info)
                    .ok()?;
            let par = info.par();
            let par = (par.numer().max(1) as u32, par.denom().max(1) as u32);
            let placement = if stretch {
                Placement {
                    x: 0,
                    y: 0,
                    width: w & !1,
                    height: h & !1,
                }
            } else {
                place((info.width(), info.height()), par, (w, h), (1, 1))
            };
            letterbox_frame(&src, &mut dst, placement, None).ok()?;
        }
        gst_video::VideoFrame::from_buffer_readable(out, &out_info).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_what_shows() {
        assert_eq!(
            clip((10, 20), (30, 40), (100, 100)),
            Some((
                Rect {
                    x: 10,
                    y: 20,
                    w: 30,
                    h: 40
                },
                (0, 0)
            ))
        );
        assert_eq!(
            clip((-5, 90), (30, 40), (100, 100)),
            Some((
                Rect {
                    x: 0,
                    y: 90,
                    w: 25,
                    h: 10
                },
                (5, 0)
            ))
        );
        assert_eq!(clip((100, 0), (30, 40), (100, 100)), None);
        assert_eq!(clip((-30, 0), (30, 40), (100, 100)), None);
    }

    #[test]
    fn only_the_bare_parts_are_painted() {
        let (w, h) = (8, 4);
        let mut plane = vec![7u8; w * h];
        let covered = [
            Rect {
                x: 0,
                y: 0,
                w: 3,
                h: 2,
            },
            Rect {
                x: 2,
                y: 0,
                w: 3,
                h: 2,
            },
            Rect {
                x: 6,
                y: 1,
                w: 2,
                h: 3,
            },
        ];
        fill_uncovered(&mut plane, w, (w, h), &covered, 0, &mut Vec::new());
        let rows: Vec<&[u8]> = plane.chunks(w).collect();
        assert_eq!(rows[0], [7, 7, 7, 7, 7, 0, 0, 0]);
        assert_eq!(rows[1], [7, 7, 7, 7, 7, 0, 7, 7]);
        assert_eq!(rows[2], [0, 0, 0, 0, 0, 0, 7, 7]);
        assert_eq!(rows[3], [0, 0, 0, 0, 0, 0, 7, 7]);
    }

    #[test]
    fn a_fully_covered_plane_is_left_alone_and_strides_are_respected() {
        let (w, h, stride) = (4, 2, 6);
        let mut plane = vec![9u8; stride * h];
        fill_uncovered(
            &mut plane,
            stride,
            (w, h),
            &[Rect {
                x: 0,
                y: 0,
                w: 4,
                h: 2,
            }],
            0,
            &mut Vec::new(),
        );
        assert!(plane.iter().all(|&v| v == 9));
        fill_uncovered(&mut plane, stride, (w, h), &[], 1, &mut Vec::new());
        assert_eq!(&plane[..6], [1, 1, 1, 1, 9, 9]);
    }
}
