//! The sound's threads give way to the picture's while the sound is ahead.
//!
//! Sound is a small part of a compose (about 8 % of its CPU: demuxing, decoding, mixing,
//! limiting, metering, encoding), and the encoder of the picture leaves gaps: x264's frame
//! threads wait on each other, and a core idles. The encoded sound may run far ahead of
//! the muxer (a queue holds up to [`AHEAD`] of it; two minutes of 128 kbit/s are 2 MB), and
//! while it is more than [`YIELD_ABOVE`] ahead its threads run under `SCHED_IDLE`: they
//! take only the cores that would otherwise idle. When the queue runs low (under
//! [`RESUME_BELOW`], or empty) they are back under the normal policy, so a busy machine
//! never starves the sound, and with it the muxer and the whole compose.
//!
//! Giving a thread its normal policy back needs `CAP_SYS_NICE` (or a raised `RLIMIT_NICE`):
//! without it [`SoundThreads::new`] finds out at once and nothing is changed. Elements whose
//! streaming thread makes sound are named with [`SOUND`] in front; their threads are followed
//! through the bus's stream-status messages, posted from the threads themselves.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

/// The prefix of the names of elements whose streaming threads make sound.
pub(super) const SOUND: &str = "sound-";

/// How far the encoded sound may run ahead of the muxer.
pub(super) const AHEAD: Duration = Duration::from_secs(120);

/// The sound's threads yield when this much encoded sound waits for the muxer...
const YIELD_ABOVE: Duration = Duration::from_secs(2);

/// ...and run as any thread again under this much.
const RESUME_BELOW: Duration = Duration::from_millis(500);

/// Names `element` as one whose streaming thread makes sound.
pub(super) fn mark_sound(element: &gst::Element) {
    element.set_property("name", format!("{SOUND}{}", element.name()));
}

/// The threads of the sound's elements and the policy they run under.
pub(super) struct SoundThreads {
    tids: Mutex<HashSet<libc::pid_t>>,
    yielding: AtomicBool,
}

impl SoundThreads {
    /// `None` where a thread's normal policy could not be given back.
    pub(super) fn new() -> Option<Arc<SoundThreads>> {
        can_resume().then(|| {
            Arc::new(SoundThreads {
                tids: Mutex::new(HashSet::new()),
                yielding: AtomicBool::new(false),
            })
        })
    }

    /// Follows the sound's threads as they start and stop, from `bus`'s stream-status
    /// messages (handled synchronously, on the thread that posts them).
    pub(super) fn watch(self: &Arc<Self>, bus: &gst::Bus) {
        let threads = self.clone();
        bus.set_sync_handler(move |_, msg| {
            if let gst::MessageView::StreamStatus(status) = msg.view() {
                let (kind, owner) = status.get();
                if owner.name().starts_with(SOUND) {
                    match kind {
                        gst::StreamStatusType::Enter => threads.enter(),
                        gst::StreamStatusType::Leave => threads.leave(),
                        _ => {}
                    }
                }
            }
            gst::BusSyncReply::Pass
        });
    }

    /// Sets the policy from how much encoded sound `queue` (the one in front of the
    /// muxer) holds, each time the muxer takes a buffer from it, and when it runs empty.
    pub(super) fn follow(self: &Arc<Self>, queue: &gst::Element) {
        let threads = self.clone();
        queue.connect("underrun", false, move |_| {
            threads.set_yielding(false);
            None
        });
        let Some(src) = queue.static_pad("src") else {
            return;
        };
        let threads = self.clone();
        let weak = queue.downgrade();
        src.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if let Some(queue) = weak.upgrade() {
                let level = Duration::from_nanos(queue.property::<u64>("current-level-time"));
                if level > YIELD_ABOVE {
                    threads.set_yielding(true);
                } else if level < RESUME_BELOW {
                    threads.set_yielding(false);
                }
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// On a sound thread that starts: record it and give it the current policy.
    fn enter(&self) {
        let Ok(mut tids) = self.tids.lock() else {
            return;
        };
        // SAFETY: gettid has no preconditions.
        tids.insert(unsafe { libc::gettid() });
        let _ = set_policy(0, self.yielding.load(Ordering::Relaxed));
    }

    /// On a sound thread that stops: forget it, and give it the normal policy back (a
    /// thread pool may run another task on it).
    fn leave(&self) {
        let Ok(mut tids) = self.tids.lock() else {
            return;
        };
        // SAFETY: gettid has no preconditions.
        tids.remove(&unsafe { libc::gettid() });
        let _ = set_policy(0, false);
    }

    fn set_yielding(&self, yielding: bool) {
        let Ok(tids) = self.tids.lock() else {
            return;
        };
        if self.yielding.swap(yielding, Ordering::Relaxed) == yielding {
            return;
        }
        for &tid in tids.iter() {
            let _ = set_policy(tid, yielding);
        }
    }

    /// Whether the sound's threads run under `SCHED_IDLE` now.
    #[cfg(test)]
    pub(super) fn yielding(&self) -> bool {
        self.yielding.load(Ordering::Relaxed)
    }
}

/// Puts thread `tid` (0: the calling one) under `SCHED_IDLE`, or back under `SCHED_OTHER`.
fn set_policy(tid: libc::pid_t, yielding: bool) -> std::io::Result<()> {
    let policy = if yielding {
        libc::SCHED_IDLE
    } else {
        libc::SCHED_OTHER
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the duration of the call.
    if unsafe { libc::sched_setscheduler(tid, policy, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether this process may give a thread under `SCHED_IDLE` its normal policy back: tried
/// once, on a thread of its own.
fn can_resume() -> bool {
    static CAN: OnceLock<bool> = OnceLock::new();
    *CAN.get_or_init(|| {
        std::thread::spawn(|| set_policy(0, true).is_ok() && set_policy(0, false).is_ok())
            .join()
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy of thread `tid`.
    fn policy(tid: libc::pid_t) -> i32 {
        // SAFETY: no preconditions; -1 for a thread that is gone.
        unsafe { libc::sched_getscheduler(tid) }
    }

    /// The threads' keeper, where this process may switch policies both ways (else the
    /// test says it is skipped).
    fn sound_threads() -> Option<Arc<SoundThreads>> {
        gst::init().unwrap();
        let threads = SoundThreads::new();
        if threads.is_none() {
            eprintln!("skipped: this process may not give a thread its policy back");
        }
        threads
    }

    #[test]
    fn sound_threads_yield_while_ahead_and_resume_when_low() {
        let Some(threads) = sound_threads() else {
            return;
        };
        // A sound thread: enters, then waits until told to leave.
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let worker = {
            let threads = threads.clone();
            std::thread::spawn(move || {
                threads.enter();
                tid_tx.send(unsafe { libc::gettid() }).unwrap();
                go_rx.recv().unwrap();
                threads.leave();
                policy(0)
            })
        };
        let tid = tid_rx.recv().unwrap();
        assert_eq!(policy(tid), libc::SCHED_OTHER);
        threads.set_yielding(true);
        assert_eq!(policy(tid), libc::SCHED_IDLE);
        assert!(threads.yielding());
        threads.set_yielding(false);
        assert_eq!(policy(tid), libc::SCHED_OTHER);
        threads.set_yielding(true);
        go_tx.send(()).unwrap();
        // Leaving gives the thread its normal policy back.
        assert_eq!(worker.join().unwrap(), libc::SCHED_OTHER);
    }

    #[test]
    fn a_queue_of_encoded_sound_sets_the_policy_by_its_level() {
        let Some(threads) = sound_threads() else {
            return;
        };
        // 3 s of 100 ms buffers go into a queue that is released only after all came in;
        // then the muxer's side drains it.
        let pipeline = gst::parse::launch(
            "audiotestsrc num-buffers=30 samplesperbuffer=4800 ! audio/x-raw,rate=48000 \
             ! queue name=ahead max-size-time=0 max-size-buffers=0 max-size-bytes=0 \
             ! fakesink name=sink sync=false",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let ahead = pipeline.by_name("ahead").unwrap();
        threads.follow(&ahead);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let observer = threads.clone();
        let sink = pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap();
        // Block the muxer's side until all 3 s are queued.
        let (full_tx, full_rx) = std::sync::mpsc::channel::<()>();
        let full_rx = Mutex::new(Some(full_rx));
        sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if let Some(rx) = full_rx.lock().unwrap().take() {
                rx.recv().unwrap();
            }
            record.lock().unwrap().push(observer.yielding());
            gst::PadProbeReturn::Ok
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        while ahead.property::<u32>("current-level-buffers") < 29 {
            std::thread::sleep(Duration::from_millis(5));
        }
        full_tx.send(()).unwrap();
        let bus = pipeline.bus().unwrap();
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos])
            .unwrap();
        pipeline.set_state(gst::State::Null).unwrap();
        let seen = seen.lock().unwrap();
        // Seen after each buffer left: yielding while more than 2 s waited, then not once
        // under 0.5 s.
        assert_eq!(seen.len(), 30);
        assert!(seen[1..8].iter().all(|&y| y), "{seen:?}");
        assert!(!seen[seen.len() - 1], "{seen:?}");
    }
}
