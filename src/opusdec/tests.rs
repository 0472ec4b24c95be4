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

/// The same packets from a container without a CodecDelay (GStreamer's muxers) lose
/// opusenc's clipping meta at the start: the decoder drops the OpusHead's pre-skip itself, as
/// opusdec does, unless told the stream was read from the middle of its file.
#[test]
fn priming_is_dropped_without_a_clipping_meta_unless_resumed() {
    let (caps, mut packets) = encoded(1, 50);
    let (clipped, _) = decoded(FACTORY, &caps, &packets);
    if let Some(meta) = packets[0]
        .make_mut()
        .meta_mut::<gst_audio::AudioClippingMeta>()
    {
        meta.remove().unwrap();
    }
    let samples =
        |out: &[(u64, Vec<f32>)]| -> Vec<f32> { out.iter().flat_map(|(_, s)| s.clone()).collect() };
    let (ours, _) = decoded(FACTORY, &caps, &packets);
    assert_eq!(ours[0].0, clipped[0].0);
    assert_eq!(samples(&ours), samples(&clipped));
    let (kept, _) = decoded(&format!("{FACTORY} skip-priming=false"), &caps, &packets);
    assert_eq!(samples(&kept).len(), samples(&clipped).len() + 312);
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
            gain_q8: 0,
            pre_skip: 312,
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
