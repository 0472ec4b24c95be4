//! Repair remux throughput (MB/s of archive): 60 s of four 640x480 VP8/Opus cameras with an
//! audio mute each, joined, silence-filled and rewritten with Duration and Cues; and the
//! real captures of ../shared/media where present. Inputs are made by the generator.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mosaic::repair::{Align, repair};
use mosaic::sample;

fn remux(c: &mut Criterion) {
    let mut spec = sample::bench(60_000);
    for s in &mut spec.streams {
        s.segments[0].audio_mutes = vec![[15_000, 18_000]];
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = dir.path().join("bench.zip");
    sample::write_archive(&spec, &archive).expect("sample archive");
    let size = std::fs::metadata(&archive).expect("archive").len();
    let mut group = c.benchmark_group("repair");
    group.throughput(Throughput::Bytes(size));
    group.bench_function("remux_4x60s_generated", |b| {
        b.iter(|| repair(&archive, &dir.path().join("out"), Align::Stream).expect("repair"))
    });
    group.finish();
}

criterion_group!(benches, remux);
criterion_main!(benches);
