//! `mosaicopusdec`: decodes mono and stereo Opus (channel mapping family 0, as browsers
//! send it) with libopus's single-stream decoder, to F32 at 48 kHz: compose's mixer and
//! repair's FLAC and WAV outputs (the edge that runs libopus).
//!
//! GStreamer's `opusdec` decodes every stream through libopus's multistream API, whose decode
//! call asks twice per packet how large a decoder's state is. In Debian's libopus (built with
//! custom modes) each answer looks the CPU's features up again with `cpuid`, an instruction a
//! virtual machine traps to its hypervisor: 4 of every 5 CPU-seconds of Opus decoding went
//! there (0.22 against 0.05 CPU-s per stream-minute, measured; 5 % of a whole compose). The
//! single-stream decoder keeps its state's layout and never asks.
//!
//! It behaves as `opusdec` does where that matters to the output: the OpusHead from the caps'
//! `streamheader` (or from the first packet) gives the channels and the output gain, which is
//! applied; phase inversion is off; audio clipping meta trims the start and end; OpusHead and
//! OpusTags packets in the stream are dropped; a packet that fails to decode counts against
//! the base class's `max-errors` and is dropped (its time stays silent in the mix). It gives
//! F32 where `opusdec` gives S16: the mixer's own format, without 16-bit rounding on the way.
//! Surround Opus (mapping family 1 and up) is left to `opusdec`; see [`takes`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_audio as gst_audio;
use gstreamer_audio::prelude::*;

pub(crate) mod libopus;
use libopus::Decoder;

/// The element's factory name.
pub const FACTORY: &str = "mosaicopusdec";

/// Opus always decodes to 48 kHz here: the mixer's rate.
const RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz.
const MAX_SAMPLES: usize = 5760;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        FACTORY,
        gst::DebugColorFlags::empty(),
        Some("mosaic's mono and stereo Opus decoder"),
    )
});

/// Registers the element with GStreamer (once per process; later calls do nothing).
///
/// # Errors
/// GStreamer's, if it refuses the registration.
pub fn register() -> Result<(), glib::BoolError> {
    gst::Element::register(None, FACTORY, gst::Rank::NONE, OpusDec::static_type())
}

/// The decoder for an Opus track of these caps (a demuxer pad's): `mosaicopusdec` for mono
/// and stereo, GStreamer's `opusdec` for surround (or caps not known yet).
pub fn factory_for(caps: Option<&gst::CapsRef>) -> &'static str {
    if caps.is_some_and(takes) {
        FACTORY
    } else {
        "opusdec"
    }
}

/// Whether `mosaicopusdec` decodes a stream of these caps (a demuxer's `audio/x-opus`):
/// mapping family 0, one or two channels. Caps without those fields are taken as `opusdec`
/// takes them, as one stereo stream.
fn takes(caps: &gst::CapsRef) -> bool {
    let Some(s) = caps.structure(0) else {
        return false;
    };
    let family = s.get::<i32>("channel-mapping-family").unwrap_or(0);
    let channels = s.get::<i32>("channels").unwrap_or(2);
    s.name() == "audio/x-opus" && family == 0 && (1..=2).contains(&channels)
}

/// What the decoder needs of an OpusHead (RFC 7845 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    channels: u8,
    mapping_family: u8,
    /// Output gain, dB in Q7.8.
    gain_q8: i16,
    /// Samples of encoder priming at the stream's start, to drop.
    pre_skip: u16,
}

impl Head {
    fn parse(data: &[u8]) -> Option<Head> {
        if data.len() < 19 || !data.starts_with(b"OpusHead") || data[8] >> 4 != 0 {
            return None;
        }
        Some(Head {
            channels: data[9],
            mapping_family: data[18],
            gain_q8: i16::from_le_bytes([data[16], data[17]]),
            pre_skip: u16::from_le_bytes([data[10], data[11]]),
        })
    }

    /// The output gain as a factor (1.0 for none).
    fn volume(&self) -> f32 {
        10f64.powf(f64::from(self.gain_q8) / 256.0 / 20.0) as f32
    }
}

glib::wrapper! {
    pub struct OpusDec(ObjectSubclass<imp::OpusDec>)
        @extends gst_audio::AudioDecoder, gst::Element, gst::Object;
}

mod imp {
    use gstreamer::subclass::prelude::*;
    use gstreamer_audio::subclass::prelude::*;

    use super::*;

    /// The stream being decoded.
    struct Stream {
        head: Head,
        /// The header's output gain as a factor.
        volume: f32,
        decoder: Decoder,
        /// Decoded samples of one packet, reused.
        pcm: Vec<f32>,
        /// Packets seen, to recognise in-band header packets (the first two).
        packets: u64,
        /// Priming samples still to drop (see the `skip-priming` property).
        priming_left: usize,
    }

    pub struct OpusDec {
        stream: Mutex<Option<Stream>>,
        skip_priming: AtomicBool,
    }

    impl Default for OpusDec {
        fn default() -> Self {
            OpusDec {
                stream: Mutex::new(None),
                skip_priming: AtomicBool::new(true),
            }
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for OpusDec {
        const NAME: &'static str = "MosaicOpusDec";
        type Type = super::OpusDec;
        type ParentType = gst_audio::AudioDecoder;
    }

    impl ObjectImpl for OpusDec {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecBoolean::builder("skip-priming")
                        .nick("Skip priming")
                        .blurb(
                            "Drop the OpusHead's pre-skip from the stream's first samples \
                             (unless the container clips them): off for a stream read from \
                             the middle of its file, whose first packet holds no priming",
                        )
                        .default_value(true)
                        .build(),
                ]
            });
            PROPS.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            if pspec.name() == "skip-priming" {
                let on = value.get().unwrap_or(true);
                self.skip_priming.store(on, Ordering::Relaxed);
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            match pspec.name() {
                "skip-priming" => self.skip_priming.load(Ordering::Relaxed).to_value(),
                _ => glib::Value::from_type(pspec.value_type()),
            }
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            obj.set_needs_format(true);
            obj.set_use_default_pad_acceptcaps(true);
        }
    }

    impl GstObjectImpl for OpusDec {}

    impl ElementImpl for OpusDec {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "Opus decoder (mono and stereo)",
                    "Codec/Decoder/Audio",
                    "Decodes one-stream Opus to F32 at 48 kHz with libopus",
                    "mosaic",
                )
            });
            Some(&META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let sink = gst::Caps::builder("audio/x-opus")
                    .field("channel-mapping-family", 0i32)
                    .build();
                let src = gst_audio::AudioCapsBuilder::new_interleaved()
                    .format(gst_audio::AUDIO_FORMAT_F32)
                    .rate(RATE as i32)
                    .channels_range(1..=2)
                    .build();
                vec![
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &sink,
                    )
                    .expect("a valid sink template"),
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &src,
                    )
                    .expect("a valid source template"),
                ]
            });
            TEMPLATES.as_ref()
        }
    }

    impl AudioDecoderImpl for OpusDec {
        /// Any one-stream Opus, whatever rate it declares (browsers' containers say 44.1 kHz):
        /// it decodes to 48 kHz whatever comes after, so downstream's caps do not narrow it.
        fn caps(&self, filter: Option<&gst::Caps>) -> gst::Caps {
            let template = self.obj().sink_pad().pad_template_caps();
            match filter {
                Some(filter) => {
                    filter.intersect_with_mode(&template, gst::CapsIntersectMode::First)
                }
                None => template,
            }
        }

        fn stop(&self) -> Result<(), gst::ErrorMessage> {
            *self.lock() = None;
            Ok(())
        }

        fn set_format(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
            let s = caps
                .structure(0)
                .ok_or_else(|| gst::loggable_error!(*CAT, "empty caps"))?;
            let header = s.get::<gst::Array>("streamheader").ok().and_then(|a| {
                a.as_slice()
                    .first()
                    .and_then(|v| v.get::<gst::Buffer>().ok())
            });
            let head = match header {
                Some(buffer) => {
                    let map = buffer
                        .map_readable()
                        .map_err(|_| gst::loggable_error!(*CAT, "unreadable OpusHead"))?;
                    Head::parse(&map)
                        .ok_or_else(|| gst::loggable_error!(*CAT, "not an OpusHead"))?
                }
                // As opusdec: without a header, one stream of the caps' channels (or stereo).
                None => Head {
                    channels: s
                        .get::<i32>("channels")
                        .ok()
                        .and_then(|c| u8::try_from(c).ok())
                        .unwrap_or(2),
                    mapping_family: 0,
                    gain_q8: 0,
                    pre_skip: 0,
                },
            };
            self.start_stream(head)
                .map_err(|e| gst::loggable_error!(*CAT, "{}", e))
        }

        fn handle_frame(
            &self,
            buffer: Option<&gst::Buffer>,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            // No draining: every packet is decoded as it comes.
            let Some(buffer) = buffer else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let obj = self.obj();
            let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
            let mut guard = self.lock();
            let Some(stream) = guard.as_mut() else {
                return Err(gst::FlowError::NotNegotiated);
            };
            stream.packets += 1;
            if map.is_empty() {
                drop(guard);
                return obj.finish_frame(None, 1);
            }
            if stream.packets <= 2 && is_header(&map) {
                // A header in band: an OpusHead that differs from the caps' one wins.
                let head = Head::parse(&map).filter(|h| *h != stream.head);
                drop(guard);
                if let Some(head) = head {
                    self.start_stream(head).map_err(|e| {
                        gst::element_imp_error!(self, gst::StreamError::Decode, ["{}", e]);
                        gst::FlowError::Error
                    })?;
                }
                return obj.finish_frame(None, 1);
            }
            match stream.decoder.decode(&map, &mut stream.pcm) {
                Ok(n) => {
                    let out = stream.output(&obj, buffer, n)?;
                    drop(guard);
                    obj.finish_frame(out, 1)
                }
                Err(e) => {
                    drop(guard);
                    gst_audio::audio_decoder_error!(
                        obj,
                        1,
                        gst::StreamError::Decode,
                        [
                            "undecodable Opus packet at {}: {}",
                            buffer.pts().display(),
                            e
                        ]
                    )?;
                    obj.finish_frame(None, 1)
                }
            }
        }
    }

    impl Stream {
        /// The output buffer of the `n` samples per channel just decoded, gain applied and
        /// trimmed as the input's clipping meta says, or else by the priming still to drop;
        /// `None` when nothing is left.
        ///
        /// Priming: a stream's first packet begins with the encoder's pre-skip (6.5 ms as
        /// browsers and GStreamer encode). A container with a CodecDelay clips it (the
        /// demuxer's clipping meta); one without (GStreamer's muxers) leaves it in, and kept,
        /// it delayed the whole file: the mixer takes the next packet as continuing this one.
        fn output(
            &mut self,
            obj: &super::OpusDec,
            input: &gst::Buffer,
            n: usize,
        ) -> Result<Option<gst::Buffer>, gst::FlowError> {
            let channels = usize::from(self.head.channels);
            let (clipped, cut) = clipping(input, n);
            let skip = if clipped > 0 {
                self.priming_left = 0;
                clipped
            } else {
                let priming = self.priming_left.min(n - cut);
                self.priming_left -= priming;
                priming
            };
            let kept = &self.pcm[skip * channels..(n - cut) * channels];
            if kept.is_empty() {
                return Ok(None);
            }
            let volume = self.volume;
            let mut out = obj.allocate_output_buffer(kept.len() * 4);
            {
                let out = out.get_mut().ok_or(gst::FlowError::Error)?;
                let mut map = out.map_writable().map_err(|_| gst::FlowError::Error)?;
                for (dst, s) in map.chunks_exact_mut(4).zip(kept) {
                    dst.copy_from_slice(&(s * volume).to_ne_bytes());
                }
            }
            Ok(Some(out))
        }
    }

    impl OpusDec {
        fn lock(&self) -> std::sync::MutexGuard<'_, Option<Stream>> {
            self.stream.lock().unwrap_or_else(|e| e.into_inner())
        }

        fn start_stream(&self, head: Head) -> Result<(), String> {
            if head.mapping_family != 0 || !(1..=2).contains(&head.channels) {
                return Err(format!(
                    "{} channels in mapping family {}: mosaicopusdec decodes one mono or stereo stream",
                    head.channels, head.mapping_family
                ));
            }
            let decoder = Decoder::new(head.channels)?;
            let info = gst_audio::AudioInfo::builder(
                gst_audio::AUDIO_FORMAT_F32,
                RATE,
                u32::from(head.channels),
            )
            .build()
            .map_err(|e| e.to_string())?;
            self.obj()
                .set_output_format(&info)
                .map_err(|e| format!("output format: {e:?}"))?;
            gst::debug!(CAT, imp = self, "decoding {:?}", head);
            *self.lock() = Some(Stream {
                head,
                volume: head.volume(),
                decoder,
                pcm: vec![0.0; MAX_SAMPLES * usize::from(head.channels)],
                packets: 0,
                priming_left: if self.skip_priming.load(Ordering::Relaxed) {
                    usize::from(head.pre_skip)
                } else {
                    0
                },
            });
            Ok(())
        }
    }

    /// The samples to drop at the start and at the end of a packet of `frames` samples per
    /// channel, from the buffer's clipping meta (in samples at 48 kHz, our rate).
    fn clipping(buffer: &gst::Buffer, frames: usize) -> (usize, usize) {
        let Some(meta) = buffer.meta::<gst_audio::AudioClippingMeta>() else {
            return (0, 0);
        };
        let samples = |v: gst::GenericFormattedValue| match v {
            gst::GenericFormattedValue::Default(Some(n)) => {
                usize::try_from(*n).unwrap_or(usize::MAX)
            }
            _ => 0,
        };
        let skip = samples(meta.start()).min(frames);
        let cut = samples(meta.end()).min(frames - skip);
        (skip, cut)
    }

    /// An OpusHead or OpusTags packet (a stream that carries its headers in band).
    fn is_header(packet: &[u8]) -> bool {
        packet.starts_with(b"OpusHead") || packet.starts_with(b"OpusTags")
    }
}

#[cfg(test)]
mod tests;
