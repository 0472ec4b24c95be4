//! The speaker layout, chosen with hindsight (pure: speech turns in, shots out).
//!
//! A live compositor must guess who speaks from the last fraction of a second; mosaic has
//! every participant's turns for the whole recording (see [`crate::speech`]) before it
//! draws a frame, so it can cut as someone begins, ignore interjections and show two people
//! who talk over each other side by side. [`plan`] turns the turns into shots (who holds
//! the main region from when), by these rules, each a field of [`Rules`]:
//!
//! - the cut to a new speaker lands [`Rules::lead_ms`] before their first word (the viewer
//!   sees them start);
//! - a turn shorter than [`Rules::min_turn_ms`] (an interjection, a cough) never takes the
//!   main region;
//! - no shot is shorter than [`Rules::min_shot_ms`]: a cut that would come sooner after the
//!   last one waits until then;
//! - two people who both speak for [`Rules::together_ms`] or more at once share the main
//!   region, side by side, for that stretch;
//! - while nobody speaks, the last speaker stays; before anyone has spoken, the first one to
//!   speak holds it; when someone who interrupted stops while the one they interrupted talks
//!   on, the main region goes back to that one.
//!
//! Each shot also orders everybody by how recently they spoke (the strip's order). Where
//! the shots go on the canvas is [`arrange`]: the main region (the speaker, or a screen share
//! while one is present, the speaker then leading the strip) takes the left three quarters,
//! which contain the canvas's centre; the others are a column on the right.

use super::{Rect, Tile, TileRequest};
use crate::speech::Span;

/// The rules' parameters (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub lead_ms: i64,
    pub min_turn_ms: i64,
    pub min_shot_ms: i64,
    pub together_ms: i64,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            lead_ms: 200,
            min_turn_ms: 1_500,
            min_shot_ms: 2_000,
            together_ms: 3_000,
        }
    }
}

/// Who holds the main region from `from_ms` (until the next shot): one participant, or two
/// side by side (by index into [`plan`]'s `turns`), and everybody by how recently they
/// spoke, the most recent first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shot {
    pub from_ms: i64,
    pub main: Vec<usize>,
    pub recent: Vec<usize>,
}

/// The shots of a recording from `start_ms`, given each participant's speech turns (on the
/// recording's timeline). Empty when nobody ever speaks a turn long enough.
pub fn plan(turns: &[Vec<Span>], start_ms: i64, rules: &Rules) -> Vec<Shot> {
    // The turns that may take the main region, in time order: (start, end, who).
    let mut long: Vec<(i64, i64, usize)> = turns
        .iter()
        .enumerate()
        .flat_map(|(who, spans)| {
            spans
                .iter()
                .filter(|s| s.len_ms() >= rules.min_turn_ms)
                .map(move |s| (s.from_ms, s.to_ms, who))
        })
        .collect();
    long.sort_unstable();
    // What the main region should show from when, before the shortest-shot rule.
    let mut wanted: Vec<(i64, Vec<usize>)> = Vec::new();
    for (i, &(start, end, who)) in long.iter().enumerate() {
        // Talking over someone whose turn is still going: side by side for as long as both
        // talk, when that is long enough.
        let over = long[..i]
            .iter()
            .filter(|&&(_, e, w)| w != who && e > start)
            .max_by_key(|&&(_, e, _)| e);
        match over {
            Some(&(_, other_end, other)) if other_end.min(end) - start >= rules.together_ms => {
                wanted.push((start - rules.lead_ms, vec![other, who]));
                // Then whoever goes on talking.
                let after = if end > other_end { who } else { other };
                wanted.push((other_end.min(end), vec![after]));
            }
            _ => {
                wanted.push((start - rules.lead_ms, vec![who]));
                // An interruption that ends while the one it interrupted talks on: back to them.
                if let Some(&(_, _, back)) = long[..i]
                    .iter()
                    .filter(|&&(_, e, w)| w != who && e > end)
                    .max_by_key(|&&(_, e, _)| e)
                {
                    wanted.push((end, vec![back]));
                }
            }
        }
    }
    wanted.sort_by_key(|(t, _)| *t);
    // The shots: redundant cuts dropped, none shorter than the shortest shot.
    let mut shots: Vec<Shot> = Vec::new();
    for (t, main) in wanted {
        let t = t.max(start_ms);
        match shots.last_mut() {
            None => shots.push(Shot {
                from_ms: start_ms,
                main,
                recent: Vec::new(),
            }),
            Some(last) if last.main == main => {}
            // A cut that was made to wait is overtaken by a later wish: that one instead.
            Some(last) if t <= last.from_ms => last.main = main,
            Some(last) if t < last.from_ms + rules.min_shot_ms => {
                let at = last.from_ms + rules.min_shot_ms;
                shots.push(Shot {
                    from_ms: at,
                    main,
                    recent: Vec::new(),
                });
            }
            Some(_) => shots.push(Shot {
                from_ms: t,
                main,
                recent: Vec::new(),
            }),
        }
    }
    // An overtaken cut may now show what the shot before it shows.
    shots.dedup_by(|b, a| a.main == b.main);
    for shot in &mut shots {
        shot.recent = recency(turns, shot.from_ms + rules.lead_ms);
    }
    shots
}

/// Everybody, the one who last spoke before `at_ms` first (those who never did, last, in
/// their order).
fn recency(turns: &[Vec<Span>], at_ms: i64) -> Vec<usize> {
    let last = |who: usize| {
        turns[who]
            .iter()
            .filter(|s| s.from_ms <= at_ms)
            .map(|s| s.to_ms.min(at_ms))
            .max()
    };
    let mut order: Vec<usize> = (0..turns.len()).collect();
    order.sort_by_key(|&w| (std::cmp::Reverse(last(w)), w));
    order
}

/// Tiles for the present `requests` (each with its index into the shot's participants in
/// `who`) under `shot`: the main region for the speaker (or both, side by side), or for a
/// screen share while one is present (the speaker then first in the strip); the others, by
/// recency, in a column on the right.
pub fn arrange(
    width: i32,
    height: i32,
    requests: &[TileRequest],
    who: &[usize],
    shot: &Shot,
) -> Vec<Option<Tile>> {
    let n = requests.len();
    let mut out = vec![None; n];
    if n == 0 {
        return out;
    }
    // Who goes in the main region, as request positions.
    let main: Vec<usize> = match requests.iter().position(|r| r.screen) {
        Some(screen) => vec![screen],
        None => shot
            .main
            .iter()
            .filter_map(|m| who.iter().position(|w| w == m))
            .collect(),
    };
    let main = if main.is_empty() { vec![0] } else { main };
    let mut strip: Vec<usize> = (0..n).filter(|i| !main.contains(i)).collect();
    let rank = |i: usize| {
        shot.recent
            .iter()
            .position(|&w| w == who[i])
            .unwrap_or(usize::MAX)
    };
    strip.sort_by_key(|&i| (rank(i), i));
    let main_w = if strip.is_empty() {
        width
    } else {
        width * 3 / 4
    };
    let each = main_w / main.len() as i32;
    for (k, &i) in main.iter().enumerate() {
        out[i] = Some(Tile {
            rect: Rect::new(each * k as i32, 0, each, height),
            z: 0,
        });
    }
    if !strip.is_empty() {
        let h = height / strip.len().max(4) as i32;
        let top = (height - h * strip.len() as i32) / 2;
        for (k, &i) in strip.iter().enumerate() {
            out[i] = Some(Tile {
                rect: Rect::new(main_w, top + h * k as i32, width - main_w, h),
                z: 0,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(spec: &[&[(i64, i64)]]) -> Vec<Vec<Span>> {
        spec.iter()
            .map(|t| {
                t.iter()
                    .map(|&(from_ms, to_ms)| Span { from_ms, to_ms })
                    .collect()
            })
            .collect()
    }

    fn cuts(shots: &[Shot]) -> Vec<(i64, Vec<usize>)> {
        shots.iter().map(|s| (s.from_ms, s.main.clone())).collect()
    }

    #[test]
    fn the_cut_lands_just_before_the_first_word() {
        let t = turns(&[&[(1_000, 6_000)], &[(7_000, 12_000)]]);
        let shots = plan(&t, 0, &Rules::default());
        assert_eq!(cuts(&shots), [(0, vec![0]), (6_800, vec![1])]);
    }

    #[test]
    fn an_interjection_never_takes_the_main_region() {
        // Ben's "mm-hm" (0.6 s) and a cough (1.2 s) during Ana's turn.
        let t = turns(&[&[(1_000, 9_000)], &[(3_000, 3_600), (6_000, 7_200)]]);
        let shots = plan(&t, 0, &Rules::default());
        assert_eq!(cuts(&shots), [(0, vec![0])]);
    }

    #[test]
    fn no_shot_is_shorter_than_two_seconds() {
        // Three quick turns: each cut waits for the shot before it to last 2 s.
        let t = turns(&[&[(1_000, 4_000)], &[(4_200, 5_900)], &[(5_000, 9_000)]]);
        let shots = plan(&t, 0, &Rules::default());
        let c = cuts(&shots);
        for w in c.windows(2) {
            assert!(w[1].0 - w[0].0 >= 2_000, "{c:?}");
        }
        assert_eq!(c.last().unwrap().1, vec![2], "{c:?}");
    }

    #[test]
    fn a_cut_made_to_wait_is_overtaken_by_a_later_one() {
        // Cy's cut waits for Ben's shot to last 2 s; Dana starts before it comes and is the
        // one shown then.
        let t = turns(&[
            &[(1_000, 4_000)],
            &[(4_200, 8_000)],
            &[(4_500, 6_200)],
            &[(5_000, 12_000)],
        ]);
        let c = cuts(&plan(&t, 0, &Rules::default()));
        assert_eq!(c[..2], [(0, vec![0]), (4_000, vec![1])]);
        assert_eq!(c[2].0, 6_000, "{c:?}");
        assert!(!c.iter().any(|(_, m)| m == &vec![2]), "{c:?}");
    }

    #[test]
    fn two_talking_at_once_for_three_seconds_share_the_main_region() {
        let t = turns(&[&[(1_000, 9_000)], &[(5_000, 13_000)]]);
        let shots = plan(&t, 0, &Rules::default());
        assert_eq!(
            cuts(&shots),
            [(0, vec![0]), (4_800, vec![0, 1]), (9_000, vec![1])]
        );
        // Two seconds at once is not long enough: the new speaker takes it.
        let t = turns(&[&[(1_000, 7_000)], &[(5_000, 13_000)]]);
        assert_eq!(
            cuts(&plan(&t, 0, &Rules::default())),
            [(0, vec![0]), (4_800, vec![1])]
        );
    }

    #[test]
    fn after_an_interruption_the_main_region_goes_back() {
        // Ana talks for 20 s; Ben cuts in for 2.5 s (too short a time together to share).
        let t = turns(&[&[(1_000, 21_000)], &[(5_000, 7_500)]]);
        assert_eq!(
            cuts(&plan(&t, 0, &Rules::default())),
            [(0, vec![0]), (4_800, vec![1]), (7_500, vec![0])]
        );
    }

    #[test]
    fn while_nobody_speaks_the_last_speaker_stays() {
        let t = turns(&[&[(1_000, 5_000)], &[(6_000, 10_000)], &[]]);
        let shots = plan(&t, 0, &Rules::default());
        // Nothing between 10 s and the end: no cut after Ben's.
        assert_eq!(cuts(&shots), [(0, vec![0]), (5_800, vec![1])]);
        assert!(plan(&turns(&[&[], &[]]), 0, &Rules::default()).is_empty());
    }

    #[test]
    fn the_strip_is_ordered_by_who_spoke_last() {
        let t = turns(&[
            &[(1_000, 4_000)],
            &[(5_000, 8_000)],
            &[(9_000, 12_000)],
            &[],
        ]);
        let shots = plan(&t, 0, &Rules::default());
        let last = shots.last().unwrap();
        assert_eq!(last.main, vec![2]);
        assert_eq!(last.recent, vec![2, 1, 0, 3]);
    }

    fn req(id: &str, screen: bool) -> TileRequest {
        TileRequest {
            stream_id: id.into(),
            screen,
        }
    }

    #[test]
    fn the_speaker_fills_the_main_region_over_the_centre() {
        let shot = Shot {
            from_ms: 0,
            main: vec![2],
            recent: vec![2, 0, 1],
        };
        let r = [req("a", false), req("b", false), req("c", false)];
        let tiles = arrange(1280, 720, &r, &[0, 1, 2], &shot);
        let main = tiles[2].unwrap().rect;
        assert!(main.contains(640, 360));
        assert!(
            i64::from(main.w * main.h) * 10 >= 1280 * 720 * 6,
            "{main:?}"
        );
        // The strip: a (spoke last) above b.
        assert!(tiles[0].unwrap().rect.y < tiles[1].unwrap().rect.y);
        assert!(tiles[0].unwrap().rect.x >= main.x + main.w);
    }

    #[test]
    fn two_speakers_side_by_side_and_a_screen_share_first() {
        let shot = Shot {
            from_ms: 0,
            main: vec![0, 1],
            recent: vec![1, 0, 2],
        };
        let r = [req("a", false), req("b", false), req("c", false)];
        let tiles = arrange(1280, 720, &r, &[0, 1, 2], &shot);
        let (a, b) = (tiles[0].unwrap().rect, tiles[1].unwrap().rect);
        assert_eq!((a.y, b.y, a.h, b.h), (0, 0, 720, 720));
        assert_eq!(a.x + a.w, b.x);
        // A screen share takes the main region; the speaker leads the strip.
        let r = [req("a", false), req("b", false), req("s", true)];
        let shot = Shot {
            from_ms: 0,
            main: vec![1],
            recent: vec![1, 0, 2],
        };
        let tiles = arrange(1280, 720, &r, &[0, 1, 2], &shot);
        assert!(tiles[2].unwrap().rect.contains(640, 360));
        assert!(tiles[1].unwrap().rect.y < tiles[0].unwrap().rect.y);
    }
}
