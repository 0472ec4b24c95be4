//! Painting on one I420 output frame: copying a picture in (clipped to the frame) and
//! filling with black only what no picture covers, and only when that memory does not already
//! hold that black from its last frame.

use std::sync::LazyLock;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::glib::translate::IntoGlib;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::super::letterbox::Placement;

/// Black in limited-range YUV, per plane.
const BLACK: [u8; 3] = [16, 128, 128];

/// A rectangle of one plane, in that plane's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl From<Placement> for Rect {
    fn from(p: Placement) -> Rect {
        Rect {
            x: p.x as usize,
            y: p.y as usize,
            w: p.width as usize,
            h: p.height as usize,
        }
    }
}

/// Adds `rect` (in luma pixels) to what the pictures drawn so far cover, in each plane.
pub(super) fn cover(covered: &mut [Vec<Rect>; 3], rect: Placement) {
    covered[0].push(rect.into());
    covered[1].push(rect.halved().into());
    covered[2].push(rect.halved().into());
}

/// Paints black whatever of `out` nothing in `covered` covers (`spans`: scratch).
pub(super) fn paint_bare(
    out: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    covered: &[Vec<Rect>; 3],
    spans: &mut Vec<(usize, usize)>,
) -> Result<(), gst::FlowError> {
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
    Ok(())
}

/// What a frame's memory was last painted as: its geometry and, per plane, what pictures
/// covered. Everything else of it was painted black, and only the canvas writes there.
#[derive(Debug)]
struct Painted {
    size: (u32, u32),
    strides: [i32; 3],
    covered: [Vec<Rect>; 3],
}

/// The quark under which a frame's memory keeps its [`Painted`].
static PAINTED: LazyLock<glib::Quark> =
    LazyLock::new(|| glib::Quark::from_str("mosaic-canvas-painted"));

/// Paints black what nothing in `covered` covers, as [`paint_bare`], unless the frame's
/// memory was last painted with the same geometry and the same covered parts: then its bare
/// parts are black already. (The canvas's output frames come back from its buffer pool with
/// their memory; letterbox bars and empty tiles stay where they were from frame to frame.)
/// Sorts `covered`. Returns whether it painted.
pub(super) fn paint_bare_once(
    out: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    covered: &mut [Vec<Rect>; 3],
    spans: &mut Vec<(usize, usize)>,
) -> Result<bool, gst::FlowError> {
    covered.iter_mut().for_each(|plane| plane.sort_unstable());
    let size = (out.width(), out.height());
    let strides = out.plane_stride();
    let strides = [strides[0], strides[1], strides[2]];
    let same = |p: &Painted| p.size == size && p.strides == strides && p.covered == *covered;
    if only_memory(out.buffer()).is_some_and(|m| last_painted(m).is_some_and(same)) {
        return Ok(false);
    }
    paint_bare(out, covered, spans)?;
    if let Some(memory) = only_memory(out.buffer()) {
        let covered = covered.clone();
        remember_painted(
            memory,
            Painted {
                size,
                strides,
                covered,
            },
        );
    }
    Ok(true)
}

/// The buffer's memory, if it has exactly one (a pool's video frames do).
fn only_memory(buffer: &gst::BufferRef) -> Option<&gst::MemoryRef> {
    (buffer.n_memory() == 1).then(|| buffer.peek_memory(0))
}

/// The [`Painted`] this memory carries, if any.
fn last_painted(memory: &gst::MemoryRef) -> Option<&Painted> {
    // SAFETY: the qdata under PAINTED is only ever set by `remember_painted`, to a leaked
    // `Box<Painted>` that lives until the memory drops it (or replaces it, which only the
    // thread painting into this memory does, after this borrow ends).
    unsafe {
        let data = gst::ffi::gst_mini_object_get_qdata(
            memory.as_ptr() as *mut gst::ffi::GstMiniObject,
            PAINTED.into_glib(),
        );
        (data as *const Painted).as_ref()
    }
}

/// Records on `memory` what it was painted as (freed with the memory).
fn remember_painted(memory: &gst::MemoryRef, painted: Painted) {
    unsafe extern "C" fn free(data: glib::ffi::gpointer) {
        // SAFETY: `data` is the `Box<Painted>` leaked below, handed back once.
        drop(unsafe { Box::from_raw(data as *mut Painted) });
    }
    // SAFETY: GStreamer takes the pointer and calls `free` on it once, when the memory is
    // freed or the qdata replaced; the qdata is per-object and locked by GStreamer.
    unsafe {
        gst::ffi::gst_mini_object_set_qdata(
            memory.as_ptr() as *mut gst::ffi::GstMiniObject,
            PAINTED.into_glib(),
            Box::into_raw(Box::new(painted)) as glib::ffi::gpointer,
            Some(free),
        );
    }
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
pub(super) fn blit(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64x32 I420 frame in memory of its own, every byte `value`.
    fn frame_buffer(value: u8) -> (gst::Buffer, gst_video::VideoInfo) {
        gst::init().unwrap();
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 64, 32)
            .build()
            .unwrap();
        (gst::Buffer::from_slice(vec![value; info.size()]), info)
    }

    fn paint(buffer: &mut gst::Buffer, info: &gst_video::VideoInfo, covered: &[Rect]) -> bool {
        let mut planes = [covered.to_vec(), Vec::new(), Vec::new()];
        let mut frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.get_mut().unwrap(), info)
                .unwrap();
        paint_bare_once(&mut frame, &mut planes, &mut Vec::new()).unwrap()
    }

    #[test]
    fn bare_parts_are_painted_once_per_memory_and_again_when_the_cover_changes() {
        let tile = Rect {
            x: 8,
            y: 0,
            w: 16,
            h: 32,
        };
        let (mut buffer, info) = frame_buffer(7);
        assert!(paint(&mut buffer, &info, &[tile]), "new memory");
        assert_eq!(buffer.map_readable().unwrap()[..8], [16; 8]);
        assert_eq!(buffer.map_readable().unwrap()[8..24], [7; 16]);
        assert!(!paint(&mut buffer, &info, &[tile]), "the same cover");
        let moved = Rect { x: 0, ..tile };
        assert!(paint(&mut buffer, &info, &[moved]), "the tile moved");
        assert!(!paint(&mut buffer, &info, &[moved]));
        // The same place in other memory, and a larger frame in this memory, are painted.
        let (mut other, _) = frame_buffer(7);
        assert!(paint(&mut other, &info, &[moved]));
        let wide = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 32, 32)
            .build()
            .unwrap();
        assert!(paint(&mut buffer, &wide, &[moved]), "another geometry");
    }

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
