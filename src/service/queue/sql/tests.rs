use super::*;
use crate::service::queue::{Kind, NewJob, Outcome, Queue};

/// A 300 ms lease on the next process job, for `owner`.
async fn claim(q: &SqlQueue, owner: &str) -> Option<JobRow> {
    q.claim(Kind::Process, "test", owner, 300).await.unwrap()
}

fn job(key: &str, run_after_ms: i64) -> NewJob {
    NewJob {
        kind: Kind::Process,
        key: Some(key.into()),
        source: "api".into(),
        summary: key.into(),
        payload: "{}".into(),
        run_after_ms,
        max_attempts: 3,
        deadline_after_ms: None,
        parent: None,
    }
}

fn note(parent: &JobRow) -> NewJob {
    NewJob {
        kind: Kind::Notify,
        key: Some(format!("n-{}", parent.id)),
        parent: Some(parent.id.clone()),
        ..job("n", 0)
    }
}

async fn open() -> (tempfile::TempDir, Arc<SqlQueue>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display());
    let q = SqlQueue::open(&url, 4).await.unwrap();
    (dir, q)
}

fn new_id(e: Enqueued) -> String {
    match e {
        Enqueued::Job { id, new: true } => id,
        other => panic!("{other:?}"),
    }
}

async fn sleep(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test]
async fn leases_retries_and_idempotency_on_sqlite() {
    let (_dir, q) = open().await;
    let a = new_id(q.enqueue(job("k1", 0), None).await.unwrap());
    let again = q.enqueue(job("k1", 0), None).await.unwrap();
    assert_eq!(
        again,
        Enqueued::Job {
            id: a.clone(),
            new: false
        }
    );
    let got = claim(&q, "w1").await.unwrap();
    assert_eq!((got.id.as_str(), got.attempts), (a.as_str(), 1));
    assert!(claim(&q, "w2").await.is_none());
    assert!(q.heartbeat(&a, "w1", 300, 50.0).await.unwrap());
    // w1 dies: its lease runs out and w2 takes the job over, the lost attempt counted;
    // w1's late heartbeat and finish are void.
    sleep(350).await;
    let over = claim(&q, "w2").await.unwrap();
    assert_eq!((over.attempts, over.lost), (2, 1));
    assert!(
        over.last_error
            .unwrap()
            .contains("worker was lost during attempt 1")
    );
    assert!(!q.heartbeat(&a, "w1", 300, 60.0).await.unwrap());
    let done = Outcome::Succeeded {
        outputs: "[]".into(),
    };
    assert!(!q.finish(&a, "w1", done.clone(), vec![]).await.unwrap());
    let retry = Outcome::Retry {
        error: "network".into(),
        delay_ms: 200,
    };
    assert!(q.finish(&a, "w2", retry, vec![]).await.unwrap());
    assert!(claim(&q, "w2").await.is_none(), "not due yet");
    sleep(250).await;
    let third = claim(&q, "w3").await.unwrap();
    assert_eq!(third.last_error.as_deref(), Some("network"));
    let row = q.get(&a).await.unwrap().unwrap();
    assert!(q.finish(&a, "w3", done, vec![note(&row)]).await.unwrap());
    let row = q.get(&a).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.progress), ("succeeded", 100.0));
    assert_eq!(
        q.counts().await.unwrap(),
        vec![
            ("notify".into(), "queued".into(), 1),
            ("process".into(), "succeeded".into(), 1)
        ],
        "the notification is stored with the outcome"
    );
}

#[tokio::test]
async fn a_job_whose_workers_are_lost_max_attempts_times_ends_dead() {
    let (_dir, q) = open().await;
    let a = new_id(q.enqueue(job("crash", 0), None).await.unwrap());
    for attempt in 1..=3 {
        let got = claim(&q, &format!("w{attempt}")).await.unwrap();
        assert_eq!(got.attempts, attempt);
        sleep(350).await; // the worker is lost: no heartbeat, no finish
    }
    assert!(
        claim(&q, "w4").await.is_none(),
        "attempts used up: not claimed again"
    );
    let notify = |job: &JobRow, outcome: &Outcome| {
        assert!(matches!(outcome, Outcome::Dead { .. }));
        vec![note(job)]
    };
    let reaped = q.reap_lost(Kind::Process, &notify).await.unwrap();
    assert_eq!(reaped.len(), 1);
    let row = q.get(&a).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.lost), ("dead", 3));
    let error = row.last_error.unwrap();
    assert!(error.starts_with("worker lost 3 times"), "{error}");
    let notes = q.list(Kind::Notify, 10).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert!(
        q.reap_lost(Kind::Process, &notify)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn tokens_are_spent_with_what_they_stored() {
    let (_dir, q) = open().await;
    let far = q.now_ms().await.unwrap() + 60_000;
    let token = |jti: &str, until_ms| {
        Some(SpentToken {
            jti: jti.into(),
            until_ms,
        })
    };
    let a = q.enqueue(job("t1", 0), token("j1", far)).await.unwrap();
    assert!(matches!(a, Enqueued::Job { new: true, .. }));
    assert_eq!(
        q.enqueue(job("t2", 0), token("j1", far)).await.unwrap(),
        Enqueued::Replay
    );
    assert!(
        q.get_by_key_for_tests("t2").await.is_none(),
        "a replay stores nothing"
    );
    assert!(
        q.record_event(
            "liveswitch",
            "x",
            Some("app/rec"),
            "{\"a\":1}",
            token("j2", far)
        )
        .await
        .unwrap()
    );
    assert!(
        !q.record_event("liveswitch", "x", Some("app/rec"), "{}", token("j2", far))
            .await
            .unwrap()
    );
    assert_eq!(
        q.events("liveswitch", "app/rec").await.unwrap(),
        vec!["{\"a\":1}".to_string()]
    );
    assert!(
        q.events("enablex", "app/rec").await.unwrap().is_empty(),
        "events are the source's own"
    );
    // A token past its window may be used again (the signature check refuses it anyway).
    let past = q.now_ms().await.unwrap() - 1;
    assert!(
        q.record_event("x", "x", None, "{}", token("j3", past))
            .await
            .unwrap()
    );
    assert!(
        q.record_event("x", "x", None, "{}", token("j3", far))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn prune_deletes_what_is_old_and_keeps_what_runs() {
    let (_dir, q) = open().await;
    let done = new_id(q.enqueue(job("done", 0), None).await.unwrap());
    let c = claim(&q, "w").await.unwrap();
    let outcome = Outcome::Failed {
        error: "bad".into(),
    };
    assert!(q.finish(&c.id, "w", outcome, vec![]).await.unwrap());
    let queued = new_id(q.enqueue(job("later", 60_000), None).await.unwrap());
    q.record_event("opentok", "k", None, "{}", None)
        .await
        .unwrap();
    let past = q.now_ms().await.unwrap() - 1;
    q.record_event(
        "x",
        "x",
        None,
        "{}",
        Some(SpentToken {
            jti: "old".into(),
            until_ms: past,
        }),
    )
    .await
    .unwrap();
    sleep(20).await;
    let pruned = q.prune(10).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            jobs: 1,
            events: 2,
            tokens: 1
        }
    );
    assert!(q.get(&done).await.unwrap().is_none());
    assert!(
        q.get(&queued).await.unwrap().is_some(),
        "a queued job stays"
    );
    assert_eq!(q.prune(10).await.unwrap(), Pruned::default());
}

impl SqlQueue {
    async fn get_by_key_for_tests(&self, key: &str) -> Option<String> {
        sqlx::query("SELECT id FROM jobs WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
            .map(|r| r.try_get("id").unwrap())
    }
}

#[tokio::test]
async fn playlist_turns_hold_the_parent_one_at_a_time_and_keep_its_count() {
    let (dir, q) = open().await;
    // A second process on the same queue file.
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display());
    let other = SqlQueue::open(&url, 4).await.unwrap();
    let parent = new_id(q.enqueue(job("hls", 0), None).await.unwrap());
    let child = NewJob {
        parent: Some(parent.clone()),
        ..job("hls/chunk/0", 0)
    };
    q.enqueue(child, None).await.unwrap();

    let spans = std::sync::Mutex::new(Vec::new());
    let write = |listed: i64, chunks: Vec<JobRow>| -> BoxFuture<'_, Result<Option<i64>, String>> {
        let spans = &spans;
        Box::pin(async move {
            assert_eq!(chunks.len(), 1, "the parent's chunks");
            let from = std::time::Instant::now();
            sleep(150).await;
            spans
                .lock()
                .unwrap()
                .push((from, std::time::Instant::now(), listed));
            Ok(Some(listed + 1))
        })
    };
    let (a, b) = tokio::join!(
        q.playlist_turn(&parent, &write),
        other.playlist_turn(&parent, &write)
    );
    assert_eq!((a.unwrap(), b.unwrap()), (Ok(()), Ok(())));
    let mut spans = spans.into_inner().unwrap();
    spans.sort_by_key(|s| s.0);
    assert!(spans[0].1 <= spans[1].0, "the turns overlapped");
    // The second turn saw the count the first one stored.
    assert_eq!((spans[0].2, spans[1].2), (0, 1));

    // A writer that fails stores nothing.
    let failing = |_: i64, _: Vec<JobRow>| -> BoxFuture<'_, Result<Option<i64>, String>> {
        Box::pin(async { Err("the store refused it".to_string()) })
    };
    let refused = q.playlist_turn(&parent, &failing).await.unwrap();
    assert_eq!(refused, Err("the store refused it".to_string()));
    let seen = std::sync::Mutex::new(None);
    let read = |listed: i64, _: Vec<JobRow>| -> BoxFuture<'_, Result<Option<i64>, String>> {
        *seen.lock().unwrap() = Some(listed);
        Box::pin(async { Ok(None) })
    };
    q.playlist_turn(&parent, &read).await.unwrap().unwrap();
    assert_eq!(*seen.lock().unwrap(), Some(2));
    assert!(q.playlist_turn("nobody", &read).await.unwrap().is_err());
}
