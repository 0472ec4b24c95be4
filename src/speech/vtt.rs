//! Who spoke when as WebVTT captions (pure): one cue a turn, `<v Label>Label</v>`, which
//! players show as captions and editors read as a speaker track.

use super::Span;

/// The WebVTT document for each speaker's turns (ms on the output's timeline).
pub fn render(speakers: &[(&str, &[Span])]) -> String {
    let mut cues: Vec<(Span, &str)> = speakers
        .iter()
        .flat_map(|(label, turns)| turns.iter().map(move |t| (*t, *label)))
        .collect();
    cues.sort_by_key(|(t, label)| (t.from_ms, t.to_ms, label.to_string()));
    let mut out = String::from("WEBVTT\n");
    for (turn, label) in cues {
        let label = escape(label);
        out.push_str(&format!(
            "\n{} --> {}\n<v {label}>{label}</v>\n",
            timestamp(turn.from_ms),
            timestamp(turn.to_ms)
        ));
    }
    out
}

/// `hh:mm:ss.ttt`.
fn timestamp(ms: i64) -> String {
    let ms = ms.max(0);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// A label as cue text: markup characters escaped, line breaks (which would end the cue)
/// made spaces.
fn escape(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '\n' | '\r' => " ".to_string(),
            c => c.to_string(),
        })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cue_a_turn_in_time_order() {
        let ana = [
            Span {
                from_ms: 1_000,
                to_ms: 7_420,
            },
            Span {
                from_ms: 3_723_004,
                to_ms: 3_725_000,
            },
        ];
        let ben = [Span {
            from_ms: 8_320,
            to_ms: 15_720,
        }];
        let doc = render(&[("Ana", &ana), ("Ben <b> & co\n", &ben)]);
        assert_eq!(
            doc,
            "WEBVTT\n\
             \n00:00:01.000 --> 00:00:07.420\n<v Ana>Ana</v>\n\
             \n00:00:08.320 --> 00:00:15.720\n<v Ben &lt;b&gt; &amp; co>Ben &lt;b&gt; &amp; co</v>\n\
             \n01:02:03.004 --> 01:02:05.000\n<v Ana>Ana</v>\n"
        );
        assert_eq!(render(&[]), "WEBVTT\n");
    }
}
