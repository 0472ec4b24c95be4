//! Inspection speed: container scan throughput (MB/s) on a generated 60 s 640x480 VP8/Opus
//! file, speech detection on its Opus track (decode and detect; the throughput is in seconds
//! of sound a second, i.e. the real-time factor), and manifest parsing + timeline planning of a synthetic 4-hour, 50-stream,
//! 400-segment manifest. Inputs are made here with mosaic's own generator; nothing is
//! downloaded.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mosaic::archive::manifest::Manifest;
use mosaic::inspect::{InspectOptions, inspect_container};
use mosaic::sample;

fn scan(c: &mut Criterion) {
    let spec = sample::bench(60_000);
    let stream = &spec.streams[0];
    let webm = sample::encode_segment(&spec, stream, &stream.segments[0]).expect("encode");
    let mut group = c.benchmark_group("inspect");
    group.throughput(Throughput::Bytes(webm.len() as u64));
    group.bench_function("scan_webm_60s_640x480", |b| {
        b.iter(|| {
            inspect_container(
                black_box(webm.as_slice()),
                "bench.webm",
                &InspectOptions::default(),
            )
            .expect("scan")
        })
    });
    // A real browser capture, where ../shared/media is present (it is in CI).
    let real =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/media/chrome52.webm");
    if let Ok(bytes) = std::fs::read(&real) {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("scan_real_chrome52", |b| {
            b.iter(|| {
                inspect_container(
                    black_box(bytes.as_slice()),
                    "chrome52.webm",
                    &InspectOptions::default(),
                )
                .expect("scan")
            })
        });
    } else {
        eprintln!("skipping scan_real_chrome52: ../shared/media is not present");
    }
    // Speech: the same file's Opus track decoded and searched (the cost does not depend on
    // what is said).
    group.throughput(Throughput::Elements(60));
    group.bench_function("speech_60s_opus", |b| {
        b.iter(|| {
            mosaic::speech::file_speech(
                black_box(webm.as_slice()),
                "bench.webm",
                &mosaic::speech::Params::default(),
            )
            .expect("speech")
        })
    });
    group.finish();
}

/// 50 streams of 8 segments each over 4 hours, listed in shuffled order.
fn big_manifest() -> String {
    let mut files = Vec::new();
    for s in 0..50 {
        for seg in 0..8 {
            let start = seg * 1_800_000 + s * 1_000;
            files.push(format!(
                r#"{{"connectionData":"{{\"name\":\"Participant {s}\"}}","filename":"stream-{s:02}_{}.webm","size":123456789,"startTimeOffset":{start},"stopTimeOffset":{},"streamId":"stream-{s:02}","videoType":"camera"}}"#,
                seg + 1,
                start + 1_700_000
            ));
        }
    }
    // A deterministic shuffle: manifests do not promise any order.
    let n = files.len();
    for i in 0..n {
        files.swap(i, (i * 7919 + 13) % n);
    }
    format!(
        r#"{{"createdAt":1700000000000,"id":"bench","name":"4h","files":[{}]}}"#,
        files.join(",")
    )
}

fn plan(c: &mut Criterion) {
    let json = big_manifest();
    c.bench_function("manifest_and_timeline_50x8_4h", |b| {
        b.iter(|| {
            let m = Manifest::parse("bench.json", black_box(json.as_bytes())).expect("manifest");
            let t = mosaic::source::opentok::timeline(&m);
            assert_eq!(t.streams.len(), 50);
            t
        })
    });
}

criterion_group!(benches, scan, plan);
criterion_main!(benches);
