//! The jobs page (pure): server-rendered HTML, newest first, refreshing itself while jobs
//! are queued or running. No script, no front-end build.

use std::fmt::Write;

use super::queue::JobRow;

use crate::inspect::svg::escape;

fn duration(job: &JobRow, now_ms: i64) -> String {
    let Some(start) = job.started_ms else {
        return String::new();
    };
    let end = job.finished_ms.unwrap_or(now_ms);
    let s = (end - start).max(0) / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

/// The page for `jobs`.
pub fn render(jobs: &[JobRow], now_ms: i64) -> String {
    let busy = jobs
        .iter()
        .any(|j| matches!(j.state.as_str(), "queued" | "running" | "waiting"));
    // A chunked compose's chunks (those listed): done and in all.
    let chunks_of = |id: &str| {
        let chunks = jobs
            .iter()
            .filter(|c| c.kind == "process" && c.parent.as_deref() == Some(id));
        chunks.fold((0usize, 0usize), |(done, all), c| {
            (done + usize::from(c.state == "succeeded"), all + 1)
        })
    };
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>mosaic jobs</title>\n",
    );
    if busy {
        html.push_str("<meta http-equiv=\"refresh\" content=\"3\">\n");
    }
    html.push_str(
        "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
         .failed,.dead{color:#b00}.succeeded{color:#070}.running{color:#05a}\
         progress{width:8em}</style></head><body>\n<h1>mosaic jobs</h1>\n",
    );
    if jobs.is_empty() {
        html.push_str("<p>No jobs yet.</p>\n</body></html>\n");
        return html;
    }
    html.push_str(
        "<table><tr><th>created</th><th>source</th><th>input</th><th>state</th>\
         <th>progress</th><th>time</th><th>attempts</th><th>output</th><th>error</th></tr>\n",
    );
    for j in jobs {
        let created = chrono::DateTime::from_timestamp_millis(j.created_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let outputs: String = j
            .outputs
            .as_ref()
            .and_then(|o| o.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|o| o.get("url")?.as_str())
                    .map(|u| {
                        let name = u.rsplit('/').next().unwrap_or(u);
                        format!("<a href=\"{}\">{}</a>", escape(u), escape(name))
                    })
                    .collect::<Vec<_>>()
                    .join("<br>")
            })
            .unwrap_or_default();
        let (done, all) = chunks_of(&j.id);
        let (chunks, progress) = match all {
            0 => (String::new(), j.progress),
            _ if j.state == "waiting" => (
                format!(" ({done}/{all} chunks)"),
                90.0 * done as f64 / all as f64,
            ),
            _ => (format!(" ({done}/{all} chunks)"), j.progress),
        };
        let _ = writeln!(
            html,
            "<tr><td>{created}</td><td>{source}</td><td>{input} \
             <a href=\"/v1/jobs/{id}/timeline.svg\">timeline</a></td>\
             <td class=\"{state}\">{state}{chunks}</td><td><progress max=\"100\" value=\"{progress:.0}\"></progress> \
             {progress:.0}%</td><td>{time}</td><td>{attempts}</td><td>{outputs}</td><td>{error}</td></tr>",
            source = escape(&j.source),
            input = escape(&j.summary),
            id = escape(&j.id),
            state = escape(&j.state),
            time = duration(j, now_ms),
            attempts = j.attempts,
            error = escape(j.last_error.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: &str, summary: &str) -> JobRow {
        JobRow {
            id: "abc".into(),
            kind: "process".into(),
            key: None,
            source: "opentok".into(),
            summary: summary.into(),
            state: state.into(),
            attempts: 1,
            max_attempts: 5,
            lost: 0,
            progress: 42.0,
            last_error: None,
            outputs: Some(serde_json::json!([{"url": "file:///o/opentok/a.mp4"}])),
            created_ms: 1_800_000_000_000,
            started_ms: Some(1_800_000_000_000),
            finished_ms: Some(1_800_000_065_000),
            run_at_ms: 0,
            deadline_ms: None,
            parent: None,
            worker: None,
            lease_owner: None,
            payload: String::new(),
        }
    }

    #[test]
    fn escapes_and_refreshes_while_busy() {
        let page = render(&[job("running", "<script>x</script>")], 0);
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>x"));
        assert!(page.contains("http-equiv=\"refresh\""));
        assert!(page.contains("1:05"));
        assert!(page.contains(">a.mp4</a>"));
        let done = render(&[job("succeeded", "archive")], 0);
        assert!(!done.contains("refresh"));
    }

    #[test]
    fn a_chunked_job_counts_its_chunks() {
        let parent = JobRow {
            id: "p".into(),
            ..job("waiting", "long call")
        };
        let chunk = |id: &str, state: &str| JobRow {
            id: id.into(),
            parent: Some("p".into()),
            ..job(state, "long call (chunk)")
        };
        let page = render(
            &[parent, chunk("c0", "succeeded"), chunk("c1", "running")],
            0,
        );
        assert!(page.contains("waiting (1/2 chunks)"), "{page}");
        assert!(page.contains("value=\"45\""), "{page}");
        assert!(page.contains("http-equiv=\"refresh\""));
    }
}
