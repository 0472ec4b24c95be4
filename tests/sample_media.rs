//! The generator makes real, decodable media whose sync marks are where the spec says:
//! decoded with GStreamer, each flash is within one frame and each beep within 20 ms of its
//! time, also after mutes; and the same spec gives the same bytes every time.

mod common;

use common::*;
use mosaic::sample::{ContainerKind, encode_segment};

fn check_marks(container: ContainerKind) {
    let spec = mutes_spec(container);
    let stream = &spec.streams[0]; // marks at 1000, 3500 (after the audio mute), 6500 (after the video mute)
    let seg = &stream.segments[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("m.{}", container.extension()));
    std::fs::write(&path, encode_segment(&spec, stream, seg).unwrap()).unwrap();
    let d = decode(&path);

    let flashes = d.flashes_ms();
    assert_eq!(flashes.len(), 3, "{flashes:?}");
    for (got, want) in flashes.iter().zip([1_000.0, 3_500.0, 6_500.0]) {
        assert!(
            (got - want).abs() <= 1000.0 / 30.0,
            "flash at {got} ms, made at {want} ms"
        );
    }
    let beeps = d.beeps_ms();
    assert_eq!(beeps.len(), 3, "{beeps:?}");
    for (got, want) in beeps.iter().zip([1_000.0, 3_500.0, 6_500.0]) {
        assert!(
            (got - want).abs() <= 20.0,
            "beep at {got} ms, made at {want} ms"
        );
    }
    // 8 s less the 1.5 s video mute, at 30 fps.
    assert_eq!(d.frames.len(), 195);
    // Audio placed by timestamp spans the file: 8 s within a packet.
    let audio_ms = d.audio_start_ns as f64 / 1e6 + d.audio.len() as f64 / 48.0;
    assert!(
        (audio_ms - 8_000.0).abs() <= 20.0,
        "audio ends at {audio_ms} ms"
    );
    // The audio mute is silence once decoded and placed by time.
    let window = &d.audio[(2_100 * 48)..(2_900 * 48)];
    assert!(
        window.iter().all(|s| s.abs() < 1e-3),
        "audio mute is not silent"
    );
}

#[test]
fn webm_marks_decode_where_they_were_made() {
    check_marks(ContainerKind::Webm);
}

#[test]
fn mkv_marks_decode_where_they_were_made() {
    check_marks(ContainerKind::Mkv);
}

#[test]
fn same_spec_same_bytes() {
    let spec = mutes_spec(ContainerKind::Webm);
    let s = &spec.streams[1];
    let a = encode_segment(&spec, s, &s.segments[0]).unwrap();
    let b = encode_segment(&spec, s, &s.segments[0]).unwrap();
    assert_eq!(a, b);
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (dir.path().join("1.zip"), dir.path().join("2.zip"));
    mosaic::sample::write_archive(&spec, &p1).unwrap();
    mosaic::sample::write_archive(&spec, &p2).unwrap();
    assert_eq!(std::fs::read(p1).unwrap(), std::fs::read(p2).unwrap());
}

#[test]
fn bad_spec_is_refused_and_writes_nothing() {
    let mut spec = mutes_spec(ContainerKind::Webm);
    spec.streams[0].width = 15;
    let dir = tempfile::tempdir().unwrap();
    let err = mosaic::sample::write_archive(&spec, dir.path().join("x.zip")).unwrap_err();
    assert!(matches!(err, mosaic::Error::InvalidSpec(_)), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
