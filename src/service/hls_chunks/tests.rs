use super::*;

/// Chunk `index` of three, 3 s each, in `state`; a succeeded one holds one segment.
fn chunk(index: usize, state: &str) -> JobRow {
    let spec = serde_json::json!({
        "origin": "api", "summary": "s", "fetch": [], "open": "a.zip",
        "output": "api/call",
        "chunk": {"index": index, "from_ms": index * 3000, "to_ms": (index + 1) * 3000},
    });
    let segment = Delivered {
        url: format!("file:///out/api/call/index-{index:04}-1-00000.ts"),
        bytes: 10,
        duration_ms: 3000,
        segment: Some(SegmentPlace {
            name: format!("index-{index:04}-1-00000.ts"),
            start_ns: index as u64 * 3_000_000_000,
            end_ns: (index as u64 + 1) * 3_000_000_000,
        }),
    };
    JobRow {
        id: format!("c{index}"),
        kind: "process".into(),
        key: None,
        source: "api".into(),
        summary: "s".into(),
        state: state.into(),
        attempts: 1,
        max_attempts: 3,
        lost: 0,
        progress: 0.0,
        last_error: None,
        outputs: (state == "succeeded").then(|| serde_json::json!([segment])),
        created_ms: 0,
        started_ms: None,
        finished_ms: None,
        run_at_ms: 0,
        deadline_ms: None,
        parent: Some("p".into()),
        worker: None,
        lease_owner: None,
        payload: spec.to_string(),
    }
}

fn names(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.ends_with(".ts")).collect()
}

#[test]
fn the_playlist_lists_the_chunks_done_from_the_first_on() {
    // Chunk 1 ended before chunk 0: nothing a player could start on.
    let early = [
        chunk(0, "running"),
        chunk(1, "succeeded"),
        chunk(2, "queued"),
    ];
    assert_eq!(next_playlist(0, &early, false).unwrap(), None);
    let two = [
        chunk(0, "succeeded"),
        chunk(1, "succeeded"),
        chunk(2, "running"),
    ];
    let (text, count) = next_playlist(0, &two, false).unwrap().unwrap();
    assert_eq!(count, 2);
    assert_eq!(
        names(&text),
        ["index-0000-1-00000.ts", "index-0001-1-00000.ts"]
    );
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !text.contains("ENDLIST"));
}

#[test]
fn a_turn_never_writes_an_older_playlist_over_a_newer_one() {
    let one = [
        chunk(0, "succeeded"),
        chunk(1, "running"),
        chunk(2, "queued"),
    ];
    // Two chunks are listed already (this turn read before the second one's success).
    assert_eq!(next_playlist(2, &one, false).unwrap(), None);
    assert_eq!(next_playlist(1, &one, false).unwrap(), None, "nothing new");
    let all = [
        chunk(0, "succeeded"),
        chunk(1, "succeeded"),
        chunk(2, "succeeded"),
    ];
    // Once ended (count 4), a chunk's late turn writes nothing.
    assert_eq!(next_playlist(4, &all, false).unwrap(), None);
}

#[test]
fn the_last_attempt_ends_the_playlist_with_every_chunk() {
    let all = [
        chunk(0, "succeeded"),
        chunk(1, "succeeded"),
        chunk(2, "succeeded"),
    ];
    let (text, count) = next_playlist(3, &all, true).unwrap().unwrap();
    assert_eq!(count, 4);
    assert_eq!(names(&text).len(), 3);
    assert!(
        text.ends_with("index-0002-1-00000.ts\n#EXT-X-ENDLIST\n"),
        "{text}"
    );
    let short = [
        chunk(0, "succeeded"),
        chunk(1, "failed"),
        chunk(2, "succeeded"),
    ];
    assert!(next_playlist(1, &short, true).is_err());
}

#[test]
fn segments_that_leave_a_gap_are_refused() {
    let mut gap = chunk(1, "succeeded");
    let mut outputs: Vec<Delivered> = serde_json::from_value(gap.outputs.clone().unwrap()).unwrap();
    if let Some(p) = outputs[0].segment.as_mut() {
        p.start_ns += 500_000_000;
    }
    gap.outputs = Some(serde_json::to_value(outputs).unwrap());
    assert!(next_playlist(0, &[chunk(0, "succeeded"), gap], false).is_err());
}

#[test]
fn the_output_name_is_the_one_the_fan_out_gave() {
    assert_eq!(stem_of(&[chunk(0, "queued")]).unwrap(), "api/call");
}
