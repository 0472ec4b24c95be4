//! glibc's allocator, tuned for long runs of video work (edge: process-wide settings).
//!
//! glibc gives every new thread that allocates an arena of its own and keeps freed memory
//! in it; GStreamer starts new threads for every composition, so a long batch (or the
//! service) grew by an arena's worth each time: peak RSS 1.48x one compose after eight
//! archives. [`tune`] allows two arenas, trims freed memory above 128 KiB and keeps video
//! frames on the heap (where freed frames are reused) instead of a fresh mmap, page faults
//! and all, for each; [`release_free_memory`] hands what is free back between jobs. A batch
//! of eight then peaks within a few percent of one compose (`tests/memory.rs`).

/// Sets the allocator up; call first thing in `main`, before any other thread exists.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, and no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
        // Setting the trim threshold stops glibc raising the mmap threshold by itself.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024 * 1024);
    }
}

/// Returns free memory of every arena to the system (between the jobs of a long run).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory that is free.
    unsafe {
        libc::malloc_trim(0);
    }
}
