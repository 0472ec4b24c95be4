//! Compose of a short archive, end to end (open, inspect, extract, one GStreamer pass,
//! encode, rename): 5 s of two 640x480 VP8/Opus cameras, one in two segments, into a
//! 1280x720 MP4. The input is made here with mosaic's own generator.

use criterion::{Criterion, criterion_group, criterion_main};
use mosaic::compose::{ComposeOptions, Control, compose};
use mosaic::sample::{self, SegmentSpec};

fn compose_short(c: &mut Criterion) {
    let mut spec = sample::bench(5_000);
    spec.streams.truncate(2);
    spec.streams[1].segments = vec![SegmentSpec::new(0, 2_000), SegmentSpec::new(2_500, 5_000)];
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = dir.path().join("short.zip");
    sample::write_archive(&spec, &archive).expect("sample archive");
    let out = dir.path().join("short.mp4");
    let mut group = c.benchmark_group("compose");
    group.sample_size(10);
    group.bench_function("two_cameras_5s_to_720p_mp4", |b| {
        b.iter(|| {
            compose(
                &archive,
                &out,
                &ComposeOptions::default(),
                &Control::default(),
            )
            .expect("compose")
        })
    });
    group.finish();
}

criterion_group!(benches, compose_short);
criterion_main!(benches);
