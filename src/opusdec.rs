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

use std::ffi::{CStr, c_char, c_int};
use std::ptr::NonNull;
use std::sync::{LazyLock, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_audio as gst_audio;
use gstreamer_audio::prelude::*;

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
        })
    }

    /// The output gain as a factor (1.0 for none).
    fn volume(&self) -> f32 {
        10f64.powf(f64::from(self.gain_q8) / 256.0 / 20.0) as f32
    }
}

#[repr(C)]
struct OpusDecoderState {
    _opaque: [u8; 0],
}

#[link(name = "opus")]
unsafe extern "C" {
    fn opus_decoder_create(fs: i32, channels: c_int, error: *mut c_int) -> *mut OpusDecoderState;
    fn opus_decoder_destroy(st: *mut OpusDecoderState);
    fn opus_decode_float(
        st: *mut OpusDecoderState,
        data: *const u8,
        len: i32,
        pcm: *mut f32,
        frame_size: c_int,
        decode_fec: c_int,
    ) -> c_int;
    fn opus_decoder_ctl(st: *mut OpusDecoderState, request: c_int, ...) -> c_int;
    fn opus_strerror(error: c_int) -> *const c_char;
}

const OPUS_SET_PHASE_INVERSION_DISABLED_REQUEST: c_int = 4046;

fn strerror(code: c_int) -> String {
    // SAFETY: libopus returns a static, NUL-terminated string for any code.
    unsafe { CStr::from_ptr(opus_strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

/// libopus's decoder of one mono or stereo stream at 48 kHz.
struct Decoder {
    state: NonNull<OpusDecoderState>,
    channels: usize,
}

// SAFETY: the state is owned by this value alone and used only through `&mut self`.
unsafe impl Send for Decoder {}

impl Decoder {
    fn new(channels: u8) -> Result<Decoder, String> {
        let mut error = 0;
        // SAFETY: plain constructor; `error` outlives the call.
        let state = unsafe { opus_decoder_create(RATE as i32, c_int::from(channels), &mut error) };
        let state = NonNull::new(state).ok_or_else(|| strerror(error))?;
        // Phase inversion off, as opusdec sets it: the mix downmixes stereo to what it needs.
        // SAFETY: a valid state and a request that takes one int.
        unsafe { opus_decoder_ctl(state.as_ptr(), OPUS_SET_PHASE_INVERSION_DISABLED_REQUEST, 1) };
        Ok(Decoder {
            state,
            channels: usize::from(channels),
        })
    }

    /// Decodes one packet into `pcm` (interleaved); returns the samples per channel.
    fn decode(&mut self, packet: &[u8], pcm: &mut [f32]) -> Result<usize, String> {
        let len = i32::try_from(packet.len()).map_err(|_| "packet too large".to_string())?;
        let frame_size = pcm.len() / self.channels;
        // SAFETY: `packet` holds `len` bytes and `pcm` room for `frame_size` samples of every
        // channel; the state is valid and ours alone.
        let n = unsafe {
            opus_decode_float(
                self.state.as_ptr(),
                packet.as_ptr(),
                len,
                pcm.as_mut_ptr(),
                frame_size as c_int,
                0,
            )
        };
        usize::try_from(n).map_err(|_| strerror(n))
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_decoder_create, destroyed once.
        unsafe { opus_decoder_destroy(self.state.as_ptr()) }
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
    }

    #[derive(Default)]
    pub struct OpusDec {
        stream: Mutex<Option<Stream>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for OpusDec {
        const NAME: &'static str = "MosaicOpusDec";
        type Type = super::OpusDec;
        type ParentType = gst_audio::AudioDecoder;
    }

    impl ObjectImpl for OpusDec {
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
        /// trimmed as the input's clipping meta says; `None` when nothing is left.
        fn output(
            &self,
            obj: &super::OpusDec,
            input: &gst::Buffer,
            n: usize,
        ) -> Result<Option<gst::Buffer>, gst::FlowError> {
            let channels = usize::from(self.head.channels);
            let (skip, cut) = clipping(input, n);
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
mod tests {
    use gstreamer_app as gst_app;

    use super::*;

    /// The pipeline of a launch line, ending in an appsink.
    fn launch(line: &str) -> (gst::Pipeline, gst_app::AppSink) {
        gst::init().unwrap();
        register().unwrap();
        let pipeline = gst::parse::launch(&format!("{line} ! appsink name=out sync=false"))
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let sink = pipeline
            .by_name("out")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        (pipeline, sink)
    }

    /// A 440 Hz sine at half scale, `packets` 20 ms packets of `channels`, encoded by
    /// `opusenc`: its caps (with the OpusHead) and its packets.
    fn encoded(channels: i32, packets: u32) -> (gst::Caps, Vec<gst::Buffer>) {
        let (pipeline, sink) = launch(&format!(
            "audiotestsrc wave=sine freq=440 volume=0.5 samplesperbuffer=960 num-buffers={packets} \
             ! audio/x-raw,rate=48000,channels={channels} ! opusenc"
        ));
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut caps = None;
        let mut buffers = Vec::new();
        while let Ok(sample) = sink.pull_sample() {
            caps = sample.caps().map(|c| c.to_owned());
            buffers.push(sample.buffer_owned().unwrap());
        }
        pipeline.set_state(gst::State::Null).unwrap();
        (caps.unwrap(), buffers)
    }

    /// What `decoder` (a launch line ending in F32 output) makes of `packets` with `caps`:
    /// each output buffer's timestamp (ns) and samples, and whether the pipeline failed.
    fn decoded(
        decoder: &str,
        caps: &gst::Caps,
        packets: &[gst::Buffer],
    ) -> (Vec<(u64, Vec<f32>)>, bool) {
        let (pipeline, sink) = launch(&format!("appsrc name=in format=time ! {decoder}"));
        let src = pipeline
            .by_name("in")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        src.set_caps(Some(caps));
        pipeline.set_state(gst::State::Playing).unwrap();
        for packet in packets {
            if src.push_buffer(packet.clone()).is_err() {
                break;
            }
        }
        let _ = src.end_of_stream();
        let mut out = Vec::new();
        while let Ok(sample) = sink.pull_sample() {
            let buffer = sample.buffer().unwrap();
            let map = buffer.map_readable().unwrap();
            let samples = map
                .chunks_exact(4)
                .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            out.push((buffer.pts().unwrap().nseconds(), samples));
        }
        let failed = pipeline
            .bus()
            .unwrap()
            .pop_filtered(&[gst::MessageType::Error])
            .is_some();
        pipeline.set_state(gst::State::Null).unwrap();
        (out, failed)
    }

    const OPUSDEC: &str = "opusdec ! audioconvert ! audio/x-raw,format=F32LE";

    fn rms(samples: &[f32]) -> f64 {
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
    }

    #[test]
    fn decodes_mono_and_stereo_as_opusdec_does() {
        for channels in [1, 2] {
            let (caps, packets) = encoded(channels, 50);
            let (ours, failed) = decoded(FACTORY, &caps, &packets);
            assert!(!failed);
            let (theirs, _) = decoded(OPUSDEC, &caps, &packets);
            // The same buffers at the same times (opusenc's clipping meta trims the first),
            // the same samples but for opusdec's rounding to 16 bits.
            assert_eq!(ours.len(), theirs.len(), "{channels} channels");
            for ((t1, a), (t2, b)) in ours.iter().zip(&theirs) {
                assert_eq!(t1, t2, "{channels} channels");
                assert_eq!(a.len(), b.len(), "{channels} channels at {t1} ns");
                let worst = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max);
                assert!(
                    worst <= 1.0 / 32768.0 + 1e-6,
                    "{channels} channels at {t1} ns: {worst}"
                );
            }
            // The encoder's priming and padding trimmed: exactly what went in.
            let all: Vec<f32> = ours.iter().flat_map(|(_, s)| s.clone()).collect();
            assert_eq!(all.len(), 50 * 960 * channels as usize);
            assert!((rms(&all[9600..]) - 0.5 / 2f64.sqrt()).abs() < 0.01);
        }
    }

    #[test]
    fn an_in_band_header_gives_the_output_gain() {
        let (caps, mut packets) = encoded(1, 20);
        let plain = gst::Caps::builder("audio/x-opus")
            .field("channel-mapping-family", 0i32)
            .field("channels", 1i32)
            .build();
        let head = caps
            .structure(0)
            .unwrap()
            .get::<gst::Array>("streamheader")
            .unwrap();
        let mut gained = head.as_slice()[0]
            .get::<gst::Buffer>()
            .unwrap()
            .map_readable()
            .unwrap()
            .to_vec();
        gained[16..18].copy_from_slice(&(-6i16 * 256).to_le_bytes());
        let tags = head.as_slice()[1].get::<gst::Buffer>().unwrap();
        let (loud, _) = decoded(FACTORY, &caps, &packets);
        packets.splice(0..0, [gst::Buffer::from_slice(gained), tags]);
        let (quiet, failed) = decoded(FACTORY, &plain, &packets);
        assert!(!failed);
        // The two header packets give no sound; the rest is 6 dB down.
        assert_eq!(quiet.len(), loud.len());
        let level =
            |o: &[(u64, Vec<f32>)]| rms(&o.iter().flat_map(|(_, s)| s.clone()).collect::<Vec<_>>());
        let ratio = level(&quiet) / level(&loud);
        assert!((ratio - 10f64.powf(-6.0 / 20.0)).abs() < 0.001, "{ratio}");
    }

    #[test]
    fn an_undecodable_packet_is_dropped_or_fails_as_max_errors_says() {
        let (caps, mut packets) = encoded(1, 10);
        // A code-3 packet that claims no frames: libopus refuses it.
        let mut bad = gst::Buffer::from_slice([0xfbu8, 0x00]);
        let pts = packets[5].pts();
        bad.get_mut().unwrap().set_pts(pts);
        packets[5] = bad;
        let (out, failed) = decoded(FACTORY, &caps, &packets);
        assert!(!failed);
        assert_eq!(out.len(), packets.len() - 1);
        // Every other packet keeps its own time: none moves into the hole.
        let times: Vec<u64> = out.iter().map(|(t, _)| *t).collect();
        assert!(!times.contains(&pts.unwrap().nseconds()));
        assert!(times.contains(&(pts.unwrap().nseconds() + 20_000_000)));
        let (_, failed) = decoded(&format!("{FACTORY} max-errors=0"), &caps, &packets);
        assert!(failed);
    }

    #[test]
    fn only_one_stream_mono_or_stereo_is_taken() {
        let caps = |family: i32, channels: i32| {
            gst::Caps::builder("audio/x-opus")
                .field("channel-mapping-family", family)
                .field("channels", channels)
                .build()
        };
        gst::init().unwrap();
        assert!(takes(&caps(0, 1)));
        assert!(takes(&caps(0, 2)));
        assert!(!takes(&caps(1, 6)));
        assert!(!takes(&caps(0, 3)));
        assert!(takes(&gst::Caps::new_empty_simple("audio/x-opus")));
        assert!(!takes(&gst::Caps::new_empty_simple("audio/x-vorbis")));
        assert_eq!(factory_for(Some(&caps(0, 2))), FACTORY);
        assert_eq!(factory_for(Some(&caps(1, 6))), "opusdec");
        assert_eq!(factory_for(None), "opusdec");
    }

    #[test]
    fn opus_heads_are_read() {
        let mut head = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00".to_vec();
        assert_eq!(
            Head::parse(&head),
            Some(Head {
                channels: 2,
                mapping_family: 0,
                gain_q8: 0
            })
        );
        head[16..18].copy_from_slice(&(-1536i16).to_le_bytes());
        let parsed = Head::parse(&head).unwrap();
        assert!((parsed.volume() - 0.501).abs() < 0.001);
        assert_eq!(Head::parse(&head[..18]), None);
        head[8] = 0x10; // major version 1: not ours to read
        assert_eq!(Head::parse(&head), None);
        assert_eq!(
            Head::parse(b"OpusTags\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
            None
        );
    }
}
