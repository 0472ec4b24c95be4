//! Counters for `/metrics` (Prometheus text format): intake answers by source and result,
//! finished attempts with their durations, and (from the queue) jobs by state.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    intake: Mutex<BTreeMap<(String, String), u64>>,
    /// (kind, state) → (count, seconds)
    finished: Mutex<BTreeMap<(String, String), (u64, f64)>>,
}

impl Metrics {
    /// Counts one webhook answer (`result`: accepted, duplicate, recorded, unauthorized, …).
    pub fn intake(&self, source: &str, result: &str) {
        if let Ok(mut m) = self.intake.lock() {
            *m.entry((source.into(), result.into())).or_default() += 1;
        }
    }

    /// Counts one finished attempt.
    pub fn finished(&self, kind: &str, state: &str, seconds: f64) {
        if let Ok(mut m) = self.finished.lock() {
            let e = m.entry((kind.into(), state.into())).or_default();
            e.0 += 1;
            e.1 += seconds;
        }
    }

    /// The exposition, with the queue's job counts.
    pub fn render(&self, jobs: &[(String, String, i64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP mosaic_jobs Jobs in the queue by kind and state.\n");
        out.push_str("# TYPE mosaic_jobs gauge\n");
        for (kind, state, n) in jobs {
            let _ = writeln!(out, "mosaic_jobs{{kind=\"{kind}\",state=\"{state}\"}} {n}");
        }
        out.push_str("# HELP mosaic_intake_total Webhook and API requests by source and result.\n");
        out.push_str("# TYPE mosaic_intake_total counter\n");
        if let Ok(m) = self.intake.lock() {
            for ((source, result), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "mosaic_intake_total{{source=\"{source}\",result=\"{result}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP mosaic_attempt_seconds Time spent in finished attempts, by kind and outcome.\n",
        );
        out.push_str("# TYPE mosaic_attempt_seconds summary\n");
        if let Ok(m) = self.finished.lock() {
            for ((kind, state), (n, secs)) in m.iter() {
                let labels = format!("kind=\"{kind}\",state=\"{state}\"");
                let _ = writeln!(out, "mosaic_attempt_seconds_count{{{labels}}} {n}");
                let _ = writeln!(out, "mosaic_attempt_seconds_sum{{{labels}}} {secs:.3}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition() {
        let m = Metrics::default();
        m.intake("opentok", "accepted");
        m.intake("opentok", "accepted");
        m.finished("process", "succeeded", 1.5);
        let text = m.render(&[("process".into(), "queued".into(), 3)]);
        assert!(text.contains("mosaic_jobs{kind=\"process\",state=\"queued\"} 3\n"));
        assert!(text.contains("mosaic_intake_total{source=\"opentok\",result=\"accepted\"} 2\n"));
        assert!(
            text.contains(
                "mosaic_attempt_seconds_sum{kind=\"process\",state=\"succeeded\"} 1.500\n"
            )
        );
    }
}
