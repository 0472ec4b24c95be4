//! `mosaiccanvas`: draws each layer's decoded I420 picture, scaled to fit its tile, straight
//! into the output frame (an element mosaic registers inside its own binary, in place of
//! per-branch scaling elements and GStreamer's `compositor`).
//!
//! With a scaling element per branch and GStreamer's `compositor`, every tile was written
//! three times a frame: scaled into a tile buffer, then the compositor cleared the whole
//! output frame to black (unless a single layer covers all of it) and copied each tile over
//! it, on a thread pool woken for every frame. Here each picture is scaled once, into its
//! place, and only what no picture covers (letterbox bars, the rest of a sparse grid) is
//! painted black.
//!
//! Pads take the `compositor`'s property names: `xpos`, `ypos`, `width`, `height` (the tile;
//! 0: the picture's own size), `alpha` (0 hides the layer; any other value draws it opaque)
//! and the base class's `zorder`; and `stretch`, to fill the tile instead of keeping the
//! picture's aspect ratio. A tile that crosses the frame's edge is drawn through a copy.

use std::sync::{LazyLock, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

mod paint;
mod pool;

use paint::{Rect, blit, cover, paint_bare, paint_bare_once};

use super::enlarge::Enlarger;
use super::letterbox::{Placement, place, scale_into};

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

/// Where a `frame`-sized picture goes inside its `tile` (relative to the tile): all of it
/// when `stretch`, else the largest centred rectangle of the picture's display aspect.
fn fit(frame: (u32, u32), par: (u32, u32), tile: (u32, u32), stretch: bool) -> Placement {
    if stretch {
        Placement {
            x: 0,
            y: 0,
            width: tile.0 & !1,
            height: tile.1 & !1,
        }
    } else {
        place(frame, par, tile, (1, 1))
    }
}

/// The enlargement tables of one layer, for the sizes they were made for.
struct Tables {
    sizes: ((u32, u32), (u32, u32)),
    enlargers: [Enlarger; 2],
}

/// A layer's picture, its tile and its properties, as one output frame needs them.
struct Layer<'a> {
    frame: &'a gst_video::VideoFrameRef<&'a gst::BufferRef>,
    settings: imp::PadSettings,
}

impl Layer<'_> {
    fn tile(&self) -> (u32, u32) {
        let own = |want: i32, v: u32| if want > 0 { want as u32 } else { v };
        (
            own(self.settings.width, self.frame.width()),
            own(self.settings.height, self.frame.height()),
        )
    }

    fn placement(&self) -> Placement {
        let par = self.frame.info().par();
        let par = (par.numer().max(1) as u32, par.denom().max(1) as u32);
        let size = (self.frame.width(), self.frame.height());
        fit(size, par, self.tile(), self.settings.stretch)
    }

    /// Scales the picture straight into its place in `out` and records what it covers.
    /// Returns `false`, drawing nothing, if its place is not wholly inside the frame (`true`
    /// also when the tile is too small to show anything).
    fn draw(
        &self,
        out: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        tables: &mut Option<Tables>,
        covered: &mut [Vec<Rect>; 3],
    ) -> Result<bool, gst::FlowError> {
        let p = self.placement();
        if p.width == 0 || p.height == 0 {
            // A tile too small to hold a picture (under 2x2): nothing shows.
            return Ok(true);
        }
        let x = i64::from(self.settings.xpos) + i64::from(p.x);
        let y = i64::from(self.settings.ypos) + i64::from(p.y);
        let inside = x >= 0
            && y >= 0
            && x + i64::from(p.width) <= i64::from(out.width())
            && y + i64::from(p.height) <= i64::from(out.height());
        if !inside {
            return Ok(false);
        }
        let rect = Placement {
            x: x as u32,
            y: y as u32,
            ..p
        };
        let from = (self.frame.width(), self.frame.height());
        let to = (p.width, p.height);
        let grows = to.0 >= from.0 && to.1 >= from.1 && to != from;
        let enlarge = if grows {
            if tables.as_ref().map(|t| t.sizes) != Some((from, to)) {
                let (f, t) = (
                    (from.0 as usize, from.1 as usize),
                    (to.0 as usize, to.1 as usize),
                );
                *tables = Some(Tables {
                    sizes: (from, to),
                    enlargers: [
                        Enlarger::new(f, t),
                        Enlarger::new((f.0.div_ceil(2), f.1.div_ceil(2)), (t.0 / 2, t.1 / 2)),
                    ],
                });
            }
            tables.as_mut().map(|t| &mut t.enlargers)
        } else {
            None
        };
        scale_into(self.frame, out, rect, enlarge)?;
        cover(covered, rect);
        Ok(true)
    }

    /// The picture letterboxed (or stretched) into a new frame of its tile's size, for a
    /// tile that crosses the frame's edge.
    fn boxed(&self) -> Option<gst_video::VideoFrame<gst_video::video_frame::Readable>> {
        let (w, h) = self.tile();
        let info = self.frame.info();
        let out_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, w, h)
            .colorimetry(&info.colorimetry())
            .chroma_site(info.chroma_site())
            .build()
            .ok()?;
        let mut out = gst::Buffer::with_size(out_info.size()).ok()?;
        {
            let mut dst =
                gst_video::VideoFrameRef::from_buffer_ref_writable(out.get_mut()?, &out_info)
                    .ok()?;
            let placement = self.placement();
            scale_into(self.frame, &mut dst, placement, None).ok()?;
            let mut covered = Default::default();
            cover(&mut covered, placement);
            paint_bare(&mut dst, &covered, &mut Vec::new()).ok()?;
        }
        gst_video::VideoFrame::from_buffer_readable(out, &out_info).ok()
    }
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

        /// The base class's choice, with the frames taken from a [`super::pool::FramePool`]
        /// (on huge pages) instead of a pool of heap memory.
        fn decide_allocation(
            &self,
            query: &mut gst::query::Allocation,
        ) -> Result<(), gst::LoggableError> {
            self.parent_decide_allocation(query)?;
            let (Some(caps), _) = query.get_owned() else {
                return Ok(());
            };
            let info = gst_video::VideoInfo::from_caps(&caps)
                .map_err(|e| gst::loggable_error!(CAT, "output caps {caps}: {e}"))?;
            let size = u32::try_from(info.size())
                .map_err(|_| gst::loggable_error!(CAT, "a {}-byte frame", info.size()))?;
            let (min, max) = query
                .allocation_pools()
                .next()
                .map_or((0, 0), |(_, _, min, max)| (min, max));
            let pool = super::pool::FramePool::new();
            let mut config = pool.config();
            config.set_params(Some(&caps), size, min, max);
            pool.set_config(config)
                .map_err(|e| gst::loggable_error!(CAT, "frame pool: {e}"))?;
            if query.allocation_pools().next().is_some() {
                query.set_nth_allocation_pool(0, Some(&pool), size, min, max);
            } else {
                query.add_allocation_pool(Some(&pool), size, min, max);
            }
            gst::debug!(CAT, imp = self, "{size}-byte frames from a huge-page pool");
            Ok(())
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
                // A hidden layer has no prepared frame (see `prepare_frame`).
                let Some(frame) = pad.prepared_frame(token) else {
                    continue;
                };
                let layer = Layer {
                    frame: &frame,
                    settings,
                };
                let mut tables = pad.imp().tables.lock().map_err(|_| gst::FlowError::Error)?;
                if layer.draw(&mut out, &mut tables, covered)? {
                    continue;
                }
                gst::debug!(
                    CAT,
                    obj = pad,
                    "drawing a tile that crosses the edge through a copy"
                );
                let boxed = layer.boxed().ok_or(gst::FlowError::Error)?;
                let pos = (i64::from(settings.xpos), i64::from(settings.ypos));
                blit(&mut out, &boxed.as_video_frame_ref(), pos, covered)?;
            }
            if !paint_bare_once(&mut out, covered, spans)? {
                gst::trace!(CAT, imp = self, "the bare parts are black already");
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
        /// Kept while the picture and tile sizes stay the same.
        pub(super) tables: Mutex<Option<Tables>>,
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
        /// A hidden layer's buffer is not even mapped.
        fn prepare_frame(
            &self,
            aggregator: &gst_video::VideoAggregator,
            token: &gst_video::subclass::AggregateFramesToken,
            buffer: &gst::Buffer,
        ) -> Option<gst_video::VideoFrame<gst_video::video_frame::Readable>> {
            if self.settings().alpha <= 0.0 {
                return None;
            }
            self.parent_prepare_frame(aggregator, token, buffer)
        }
    }
}

#[cfg(test)]
mod tests;
