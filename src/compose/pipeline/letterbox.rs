//! Fitting a picture into a box: where it goes, keeping its aspect ratio, and scaling it
//! there.
//!
//! GStreamer's `videoscale` does the same job with a generic resampler whose horizontal
//! pass runs as plain C here: 0.28 ms a frame for 640x480 into a 640x360 tile, as much as
//! decoding the VP8 picture. libyuv's `I420Scale` (SIMD, Debian's `libyuv0`) takes
//! 0.023 ms for the same frame, box-filtered; pictures that grow go through [`Enlarger`]'s
//! tables instead, which libyuv is slow at.

use std::os::raw::c_int;

use super::enlarge::Enlarger;

use gstreamer as gst;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

/// Where the picture goes inside the output frame, in output pixels (all even, so the
/// half-size chroma planes line up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Placement {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Placement {
    /// The same place in a plane of half the width and height (I420's chroma).
    pub(super) fn halved(self) -> Placement {
        Placement {
            x: self.x / 2,
            y: self.y / 2,
            width: self.width / 2,
            height: self.height / 2,
        }
    }
}

/// The largest rectangle of the input's display aspect ratio that fits the output, centred.
/// `par`s are pixel aspect ratios (numerator, denominator).
pub(super) fn place(
    (in_w, in_h): (u32, u32),
    in_par: (u32, u32),
    (out_w, out_h): (u32, u32),
    out_par: (u32, u32),
) -> Placement {
    // Display aspect of the input, in output pixels: width / height.
    let num = u64::from(in_w) * u64::from(in_par.0) * u64::from(out_par.1);
    let den = (u64::from(in_h) * u64::from(in_par.1) * u64::from(out_par.0)).max(1);
    let (w, h) = if u64::from(out_h) * num <= u64::from(out_w) * den {
        ((u64::from(out_h) * num / den) as u32, out_h)
    } else {
        (out_w, (u64::from(out_w) * den / num.max(1)) as u32)
    };
    let even = |v: u32, max: u32| (v.min(max) & !1).max(2.min(max));
    let (width, height) = (even(w, out_w), even(h, out_h));
    Placement {
        x: ((out_w - width) / 2) & !1,
        y: ((out_h - height) / 2) & !1,
        width,
        height,
    }
}

#[link(name = "yuv")]
unsafe extern "C" {
    /// libyuv: scales one I420 picture into another (`filtering`: 0 none, 1 linear,
    /// 2 bilinear, 3 box). Returns 0 on success.
    fn I420Scale(
        src_y: *const u8,
        src_stride_y: c_int,
        src_u: *const u8,
        src_stride_u: c_int,
        src_v: *const u8,
        src_stride_v: c_int,
        src_width: c_int,
        src_height: c_int,
        dst_y: *mut u8,
        dst_stride_y: c_int,
        dst_u: *mut u8,
        dst_stride_u: c_int,
        dst_v: *mut u8,
        dst_stride_v: c_int,
        dst_width: c_int,
        dst_height: c_int,
        filtering: c_int,
    ) -> c_int;
}

/// Box filtering when shrinking, bilinear when enlarging.
const FILTER_BOX: c_int = 3;

/// Scales I420 `inframe` into `rect` of `outframe` (in luma pixels, even, inside the frame),
/// leaving the rest of `outframe` as it is: with `enlarge`'s tables when given (made for
/// these two sizes), with libyuv otherwise.
pub(super) fn scale_into(
    inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
    outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    rect: Placement,
    enlarge: Option<&mut [Enlarger; 2]>,
) -> Result<(), gst::FlowError> {
    let fits = rect.x + rect.width <= outframe.width()
        && rect.y + rect.height <= outframe.height()
        && rect.width > 0
        && rect.height > 0;
    if !fits {
        return Err(gst::FlowError::Error);
    }
    let strides: [usize; 3] = std::array::from_fn(|i| outframe.plane_stride()[i] as usize);
    let offsets: [usize; 3] = std::array::from_fn(|i| {
        let r = if i == 0 { rect } else { rect.halved() };
        r.y as usize * strides[i] + r.x as usize
    });
    let in_strides = inframe.plane_stride();
    if let Some(enlargers) = enlarge {
        for i in 0..3 {
            let src = inframe
                .plane_data(i as u32)
                .map_err(|_| gst::FlowError::Error)?;
            let dst = outframe
                .plane_data_mut(i as u32)
                .map_err(|_| gst::FlowError::Error)?
                .get_mut(offsets[i]..)
                .ok_or(gst::FlowError::Error)?;
            if !enlargers[i.min(1)].scale(src, in_strides[i] as usize, dst, strides[i]) {
                return Err(gst::FlowError::Error);
            }
        }
        return Ok(());
    }
    let mut planes = [std::ptr::null_mut::<u8>(); 3];
    for (i, plane) in planes.iter_mut().enumerate() {
        *plane = outframe
            .plane_data_mut(i as u32)
            .map_err(|_| gst::FlowError::Error)?
            .get_mut(offsets[i]..)
            .ok_or(gst::FlowError::Error)?
            .as_mut_ptr();
    }
    let mut sources = [std::ptr::null::<u8>(); 3];
    for (i, source) in sources.iter_mut().enumerate() {
        *source = inframe
            .plane_data(i as u32)
            .map_err(|_| gst::FlowError::Error)?
            .as_ptr();
    }
    // SAFETY: the pointers come from mapped frames whose planes hold the strides and sizes
    // given (the destination's start at the rectangle's offset; the rectangle lies inside
    // the output frame, checked above), and the frames stay mapped for the call.
    let status = unsafe {
        I420Scale(
            sources[0],
            in_strides[0],
            sources[1],
            in_strides[1],
            sources[2],
            in_strides[2],
            inframe.width() as c_int,
            inframe.height() as c_int,
            planes[0],
            strides[0] as c_int,
            planes[1],
            strides[1] as c_int,
            planes[2],
            strides[2] as c_int,
            rect.width as c_int,
            rect.height as c_int,
            FILTER_BOX,
        )
    };
    if status != 0 {
        return Err(gst::FlowError::Error);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_by_three_into_sixteen_by_nine_is_pillarboxed() {
        let p = place((640, 480), (1, 1), (640, 360), (1, 1));
        assert_eq!(
            p,
            Placement {
                x: 80,
                y: 0,
                width: 480,
                height: 360
            }
        );
    }

    #[test]
    fn wide_into_square_is_letterboxed() {
        let p = place((1280, 720), (1, 1), (426, 426), (1, 1));
        assert_eq!((p.width, p.height), (426, 238));
        assert_eq!((p.x, p.y), (0, 94));
    }

    #[test]
    fn same_aspect_fills_the_frame() {
        let p = place((320, 240), (1, 1), (640, 480), (1, 1));
        assert_eq!(
            p,
            Placement {
                x: 0,
                y: 0,
                width: 640,
                height: 480
            }
        );
    }

    #[test]
    fn pixel_aspect_ratio_counts() {
        // 720x576 at 16:15 pixels is 4:3 on screen.
        let p = place((720, 576), (16, 15), (640, 360), (1, 1));
        assert_eq!((p.width, p.height), (480, 360));
    }

    #[test]
    fn odd_sizes_stay_even_and_inside() {
        let p = place((641, 479), (1, 1), (333, 211), (1, 1));
        assert!(
            [p.width, p.height, p.x, p.y]
                .iter()
                .all(|v| v.is_multiple_of(2))
        );
        assert!(p.x + p.width <= 333 && p.y + p.height <= 211);
    }
}
