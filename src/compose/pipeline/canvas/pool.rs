//! The canvas's output frames, packed side by side in large anonymous mappings that ask the
//! kernel for transparent huge pages (`MADV_HUGEPAGE`).
//!
//! Every output frame is written once by the canvas and read once by x264, which copies it
//! into its own frames (those already lie on huge pages: libx264 asks for them itself). On
//! glibc's heap a 1920x1080 frame spans 760 pages of 4 KiB, and both passes pay for the
//! page-table walks: with the frames on huge pages a 1080p compose took 2-5 % less time,
//! depending on how busy the shared machine was (`docs/benchmarks.md`, change 11). Packing the frames one after another, rather than
//! giving each its own 2 MiB-rounded block, keeps the memory they take what they hold: at
//! most the part of one huge page past the last frame in use is extra.
//!
//! Where the kernel has no transparent huge pages (or they are off), the mappings are plain
//! anonymous memory and nothing else changes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;

/// A huge page on x86-64 and aarch64 (with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;
/// Frames per mapping: the pool starts another mapping once these are all in use.
const FRAMES_PER_SLAB: usize = 32;
/// Frames start on cache lines (SIMD copies and stores of whole lines).
const FRAME_ALIGN: usize = 64;

/// One mapping holding up to `count` frames of `size` bytes, `stride` bytes apart.
#[derive(Debug)]
pub(super) struct Slab {
    base: NonNull<u8>,
    len: usize,
    size: usize,
    stride: usize,
    /// Slots not handed out; the lowest is taken first, so that the frames in use stay
    /// packed at the mapping's start.
    free: Mutex<BinaryHeap<Reverse<usize>>>,
}

// SAFETY: the mapping is plain memory owned by the slab; each slot is handed to one
// `SlabFrame` at a time (the free list is locked), which alone reads and writes it.
unsafe impl Send for Slab {}
// SAFETY: as above; the slab itself only touches `free`, behind its mutex.
unsafe impl Sync for Slab {}

impl Slab {
    /// Maps room for `count` frames of `size` bytes, aligned to a huge page, and asks for
    /// huge pages on it. Fails if the sizes overflow or the kernel refuses the mapping.
    pub(super) fn new(size: usize, count: usize) -> std::io::Result<Slab> {
        let too_big = || std::io::Error::from(std::io::ErrorKind::OutOfMemory);
        let stride = size
            .max(1)
            .checked_next_multiple_of(FRAME_ALIGN)
            .ok_or_else(too_big)?;
        let len = stride
            .checked_mul(count.max(1))
            .and_then(|n| n.checked_next_multiple_of(4096))
            .ok_or_else(too_big)?;
        let reserve = len.checked_add(HUGE_PAGE).ok_or_else(too_big)?;
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserve,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let start = raw as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE);
        let (head, tail) = (aligned - start, reserve - (aligned - start) - len);
        // SAFETY: both ranges lie inside the mapping made above, page-aligned (`mmap` gives
        // page-aligned memory, `len` is a multiple of 4 KiB) and nothing refers to them.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap((aligned + len) as *mut libc::c_void, tail);
            }
            // Advice only: an old kernel or one built without THP refuses it, and the
            // frames are then ordinary pages.
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
        let base = NonNull::new(aligned as *mut u8).ok_or_else(too_big)?;
        Ok(Slab {
            base,
            len,
            size,
            stride,
            free: Mutex::new((0..count.max(1)).map(Reverse).collect()),
        })
    }

    /// The lowest free slot, or `None` when every one is in use.
    pub(super) fn take(self: &Arc<Self>) -> Option<SlabFrame> {
        let Reverse(index) = self.free.lock().ok()?.pop()?;
        Some(SlabFrame {
            slab: Arc::clone(self),
            index,
        })
    }

    /// The frame size this slab was made for.
    pub(super) fn frame_size(&self) -> usize {
        self.size
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; every `SlabFrame` holds an `Arc` to the slab,
        // so none is left to use it.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// One frame's memory inside a [`Slab`]; gives its slot back when dropped.
#[derive(Debug)]
pub(super) struct SlabFrame {
    slab: Arc<Slab>,
    index: usize,
}

impl SlabFrame {
    fn ptr(&self) -> *mut u8 {
        // SAFETY: `index` < the slab's count, so the offset stays inside the mapping.
        unsafe { self.slab.base.as_ptr().add(self.index * self.slab.stride) }
    }
}

impl AsRef<[u8]> for SlabFrame {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the slot is `size` bytes inside the live mapping (the `Arc` keeps it), and
        // only this frame uses it.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.slab.size) }
    }
}

impl AsMut<[u8]> for SlabFrame {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`; `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.slab.size) }
    }
}

impl Drop for SlabFrame {
    fn drop(&mut self) {
        if let Ok(mut free) = self.slab.free.lock() {
            free.push(Reverse(self.index));
        }
    }
}

glib::wrapper! {
    /// A buffer pool whose buffers are [`SlabFrame`]s of the configured size.
    pub struct FramePool(ObjectSubclass<imp::FramePool>)
        @extends gst::BufferPool, gst::Object;
}

impl FramePool {
    pub fn new() -> FramePool {
        glib::Object::new()
    }
}

impl Default for FramePool {
    fn default() -> Self {
        Self::new()
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct FramePool {
        /// The mappings frames are taken from (all of the configured size).
        slabs: Mutex<Vec<Arc<Slab>>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for FramePool {
        const NAME: &'static str = "MosaicFramePool";
        type Type = super::FramePool;
        type ParentType = gst::BufferPool;
    }

    impl ObjectImpl for FramePool {}
    impl GstObjectImpl for FramePool {}

    impl BufferPoolImpl for FramePool {
        fn set_config(&self, config: &mut gst::BufferPoolConfigRef) -> bool {
            let Some((_, size, _, _)) = config.params() else {
                return false;
            };
            if let Ok(mut slabs) = self.slabs.lock() {
                // Frames of the old size keep their mapping alive until they are freed.
                slabs.retain(|slab| slab.frame_size() == size as usize);
            }
            self.parent_set_config(config)
        }

        fn alloc_buffer(
            &self,
            _params: Option<&gst::BufferPoolAcquireParams>,
        ) -> Result<gst::Buffer, gst::FlowError> {
            let size = self
                .obj()
                .config()
                .params()
                .ok_or(gst::FlowError::NotNegotiated)?
                .1 as usize;
            let mut slabs = self.slabs.lock().map_err(|_| gst::FlowError::Error)?;
            if let Some(frame) = slabs.iter().find_map(Slab::take) {
                return Ok(gst::Buffer::from_mut_slice(frame));
            }
            match Slab::new(size, FRAMES_PER_SLAB) {
                Ok(slab) => {
                    let slab = Arc::new(slab);
                    let frame = slab.take().ok_or(gst::FlowError::Error)?;
                    slabs.push(slab);
                    Ok(gst::Buffer::from_mut_slice(frame))
                }
                // A process whose address space is capped may refuse the mapping: the frame
                // then comes from the heap, as from any other pool.
                Err(e) => {
                    gst::warning!(gst::CAT_RUST, "{size}-byte frames from the heap: {e}");
                    gst::Buffer::with_size(size).map_err(|_| gst::FlowError::Error)
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The `smaps` fields of the mapping holding `addr`, if `/proc` is there.
    pub(in super::super) fn mapping_of(addr: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut found = None;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                if found.is_some() {
                    break;
                }
                if (a..b).contains(&addr) {
                    found = Some(String::new());
                }
                continue;
            }
            if let Some(fields) = found.as_mut() {
                fields.push_str(line);
                fields.push('\n');
            }
        }
        found
    }

    /// Whether the memory at `addr` lies in a mapping that asked for huge pages and may
    /// have them; `None` where the kernel has them off (nothing to check then).
    pub(in super::super) fn on_huge_pages(addr: usize) -> Option<bool> {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !thp.contains("[always]") && !thp.contains("[madvise]") {
            eprintln!("transparent huge pages are off here ({thp:?}): nothing to check");
            return None;
        }
        let fields = mapping_of(addr)?;
        let field = |name: &str| {
            fields
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        Some(
            field("THPeligible:") == "1" && field("VmFlags:").split_whitespace().any(|f| f == "hg"),
        )
    }

    #[test]
    fn frames_are_packed_disjoint_and_reused_lowest_first() {
        let size = 1920 * 1080 * 3 / 2;
        let slab = Arc::new(Slab::new(size, 3).unwrap());
        assert_eq!(slab.base.as_ptr() as usize % HUGE_PAGE, 0);
        let mut a = slab.take().unwrap();
        let mut b = slab.take().unwrap();
        let c = slab.take().unwrap();
        assert!(slab.take().is_none(), "three slots only");
        assert_eq!(
            b.ptr() as usize - a.ptr() as usize,
            size.next_multiple_of(64)
        );
        a.as_mut().fill(1);
        b.as_mut().fill(2);
        assert!(a.as_ref().iter().all(|&v| v == 1) && b.as_ref()[0] == 2);
        assert_eq!(a.as_ref().len(), size);
        let first = a.ptr();
        drop(c);
        drop(a);
        assert_eq!(
            slab.take().unwrap().ptr(),
            first,
            "the lowest slot comes back first"
        );
    }

    #[test]
    fn impossible_sizes_are_refused_not_mapped() {
        let err = Slab::new(usize::MAX / 4, 8).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
    }

    #[test]
    fn the_frames_mapping_may_use_huge_pages() {
        let slab = Arc::new(Slab::new(1280 * 720 * 3 / 2, 4).unwrap());
        let mut frame = slab.take().unwrap();
        frame.as_mut().fill(16);
        if let Some(huge) = on_huge_pages(frame.ptr() as usize) {
            assert!(huge, "{:?}", mapping_of(frame.ptr() as usize));
        }
    }

    #[test]
    fn the_pool_hands_out_frames_of_its_size_and_takes_them_back() {
        gst::init().unwrap();
        let pool = FramePool::new();
        let mut config = pool.config();
        config.set_params(None, 4096, 2, 0);
        pool.set_config(config).unwrap();
        pool.set_active(true).unwrap();
        let first = pool.acquire_buffer(None).unwrap();
        assert_eq!(first.size(), 4096);
        let addr = first.map_readable().unwrap().as_ptr();
        drop(first);
        let again = pool.acquire_buffer(None).unwrap();
        let second = pool.acquire_buffer(None).unwrap();
        let addrs = [
            again.map_readable().unwrap().as_ptr(),
            second.map_readable().unwrap().as_ptr(),
        ];
        assert!(
            addrs.contains(&addr),
            "a released frame is handed out again"
        );
        assert_ne!(addrs[0], addrs[1]);
        drop((again, second));
        pool.set_active(false).unwrap();
    }
}
