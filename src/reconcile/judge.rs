//! One element's history judged against what was heard: the changes to request (marked
//! `reconcile`), a whole resync when the history wrapped, and what the memory keeps.

use std::collections::HashMap;
use std::sync::Arc;

use super::history::{read_history, CmClock, HistoryRecord};
use super::matching::{compare, Found, Window};
use super::memory::{ElementMemory, Judged, RunSummary};
use super::session::{CLOCK, HISTORY};
use super::HistoryReader;
use crate::classify::Verb;
use crate::ossi::CommandReply;
use crate::resync::{Change, Key, Origin, Scope};

const MINUTE_MS: u64 = 60_000;
/// Each comparison starts this far before the point the last one reached: a record whose
/// minute straddles that point is judged in both, and once only (its line is remembered).
pub const OVERLAP_MS: u64 = 5 * MINUTE_MS;
/// The reason of the element resync a wrapped history asks for.
pub const WRAPPED: &str = "history wrapped";

/// What to judge, and against what.
pub struct Inputs<'a> {
    pub element: &'a str,
    pub replies: &'a [CommandReply],
    /// When the session began (ms): the history holds every change made before it.
    pub read_at: u64,
    pub memory: &'a ElementMemory,
    /// `omcmsync reconcile --since`: judge from here instead of where the last one ended.
    pub since: Option<u64>,
    pub tolerance_ms: u64,
}

/// The changes to queue and what the memory keeps of the judgement.
pub struct Verdict {
    pub changes: Vec<Change>,
    pub judged: Judged,
}

/// Judges the history; `Err` says why the replies cannot be judged (nothing is requested).
pub fn judge(
    input: &Inputs,
    reader: &dyn HistoryReader,
    summary: RunSummary,
) -> Result<Verdict, String> {
    let (clock, records, unreadable) = clock_and_history(input)?;
    let window = window(input, &clock);
    let timed: Vec<(u64, &HistoryRecord)> = records
        .iter()
        .filter_map(|r| Some((clock.minute_ms(r)?, r)))
        .collect();
    let unreadable = unreadable + records.len() - timed.len();
    fail_if_unreadable(unreadable, unreadable + records.len())?;
    let oldest = timed.iter().map(|(minute, _)| *minute).min();
    let (found, lines) = new_changes(input, &timed, window, reader);
    let heard: Vec<_> = input.memory.recent.iter().cloned().collect();
    let comparison = compare(found, &heard, window);
    let wrapped = window.wrapped(oldest);
    let mut changes: Vec<Change> = comparison
        .missed
        .into_iter()
        .filter(|f| f.item.new)
        .map(|f| f.item.request())
        .collect();
    let summary = RunSummary {
        records: records.len(),
        unreadable,
        heard: comparison.paired.len(),
        missed: changes.len(),
        wrapped,
        ..summary
    };
    if wrapped {
        changes.push(element_resync(input.element, input.read_at));
    }
    let keep_from = window
        .from_ms
        .min(input.read_at.saturating_sub(OVERLAP_MS))
        .saturating_sub(2 * MINUTE_MS + 2 * input.tolerance_ms);
    let paired = comparison.paired.iter().map(|&i| heard[i].clone());
    Ok(Verdict {
        changes,
        judged: Judged {
            covered: Some(input.read_at),
            lines,
            paired: paired.collect(),
            offset_ms: Some(clock.offset_ms()),
            keep_from,
            summary,
        },
    })
}

/// The span to judge: from where the last session reached (never after now: a clock that was
/// once ahead), widened by any move of CM's clock against ours since (a DST change moved its
/// records as much), or from further back when asked; never from later, which would skip a gap
/// for good.
fn window(input: &Inputs, clock: &CmClock) -> Window {
    let shift = input
        .memory
        .offset_ms
        .map_or(0, |before| before.abs_diff(clock.offset_ms()));
    let usual = input
        .memory
        .covered
        .min(input.read_at)
        .saturating_sub(OVERLAP_MS + shift);
    Window {
        from_ms: input.since.map_or(usual, |since| since.min(usual)),
        tolerance_ms: input.tolerance_ms,
    }
}

/// A record not read is a change not judged: past a tenth of them, CM's layout is not the one
/// read here, and the session fails rather than pass for a quiet CM.
fn fail_if_unreadable(unreadable: usize, total: usize) -> Result<(), String> {
    if unreadable > 0 && unreadable * 10 > total {
        return Err(format!(
            "list history: {unreadable} of {total} records unreadable (mm/dd, hh:mm expected first)"
        ));
    }
    Ok(())
}

/// CM's clock and its history's records, from the replies; `Err` when either cannot be used.
fn clock_and_history(input: &Inputs) -> Result<(CmClock, Vec<HistoryRecord>, usize), String> {
    let reply = |command: &str| {
        input
            .replies
            .iter()
            .find(|r| r.command == command)
            .map(|r| &r.reply)
            .ok_or_else(|| format!("no reply to {command}"))
    };
    let clock_reply = input.replies.iter().find(|r| r.command == CLOCK);
    // Read against when CM answered, not when the session began (a slow login, a first
    // duplex host that timed out).
    let at_ms = clock_reply.map_or(0, |r| r.at_ms);
    let at_ms = if at_ms > 0 { at_ms } else { input.read_at };
    let clock =
        CmClock::read(reply(CLOCK)?, at_ms).ok_or("CM's clock (display time) could not be read")?;
    let history = reply(HISTORY)?;
    if let Some(e) = history.failure() {
        return Err(format!("list history: {} {}", e.code, e.text.trim()));
    }
    if !history.complete {
        return Err("list history: the reply was cut short".into());
    }
    let (records, unreadable) = read_history(history);
    Ok((clock, records, unreadable))
}

/// A change a record makes, as judged.
pub struct Candidate {
    change: Change,
    /// Not judged by an earlier session: requested if missed. A record judged before still
    /// pairs, so that a change heard after that session ended is used up by its own record
    /// and not by a later one.
    new: bool,
    /// CM cut the record's qualifier (31 characters): its ids may be cut too.
    cut: bool,
}

/// The qualifier's length at which CM cuts it.
const QUALIFIER_CUT: usize = 31;

impl Candidate {
    /// The request for a missed change: a cut record's object (a `duplicate` range, a long id)
    /// may be wrong, so its whole type is asked for.
    fn request(self) -> Change {
        let mut change = self.change;
        if let (true, Scope::Object { ty, .. }) = (self.cut, &change.key.scope) {
            change.key.scope = Scope::Type { ty: ty.clone() };
            change.reason = Some("history record cut at 31 characters".into());
        }
        change
    }
}

/// The changes of the records in the window, and the lines of those not judged before.
fn new_changes(
    input: &Inputs,
    timed: &[(u64, &HistoryRecord)],
    window: Window,
    reader: &dyn HistoryReader,
) -> (Vec<Found<Candidate>>, Vec<(u64, String)>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (_, line) in &input.memory.judged {
        *seen.entry(line.as_str()).or_default() += 1;
    }
    let mut found = Vec::new();
    let mut lines = Vec::new();
    for &(minute, record) in timed.iter().filter(|(m, _)| window.covers(*m)) {
        let line = record.line();
        let new = match seen.get_mut(line.as_str()).filter(|n| **n > 0) {
            Some(n) => {
                *n -= 1;
                false
            }
            None => true,
        };
        let cut = record.rest[4].chars().count() >= QUALIFIER_CUT;
        for change in reader.changes(input.element, &line, minute) {
            found.push(Found {
                minute_ms: minute,
                scope: change.key.scope.clone(),
                login: change.login.clone(),
                item: Candidate { change, new, cut },
            });
        }
        if new {
            lines.push((minute, line));
        }
    }
    (found, lines)
}

fn element_resync(element: &str, at_ms: u64) -> Change {
    Change {
        key: Key {
            element: Arc::from(element),
            scope: Scope::Element,
        },
        verb: Verb::Change,
        login: None,
        reason: Some(WRAPPED.into()),
        at_ms,
        origin: Origin::Reconcile,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ossi::{Field, Reply};
    use crate::reconcile::matching::Heard;

    /// Classifies `mm/dd hh:mm port login chan station ID` as a station change.
    struct Stations;

    impl HistoryReader for Stations {
        fn changes(&self, element: &str, line: &str, at_ms: u64) -> Vec<Change> {
            let words: Vec<&str> = line.split(' ').collect();
            if words.get(4) != Some(&"chan") {
                return Vec::new();
            }
            vec![Change {
                key: Key {
                    element: element.into(),
                    scope: station(words[6]),
                },
                verb: Verb::Change,
                login: Some(words[3].into()),
                reason: None,
                at_ms,
                origin: Origin::Reconcile,
            }]
        }
    }

    fn station(id: &str) -> Scope {
        Scope::Object {
            ty: "station".into(),
            id: id.into(),
        }
    }

    fn reply(command: &str, records: &[Vec<&str>]) -> CommandReply {
        let records = records
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| Field {
                        id: None,
                        value: v.to_string(),
                    })
                    .collect()
            })
            .collect();
        CommandReply {
            command: command.into(),
            at_ms: 0,
            reply: Reply {
                records,
                complete: true,
                ..Reply::default()
            },
        }
    }

    // 2026-12-06T10:15:30Z, CM in UTC.
    const NOW: u64 = 1_796_552_130_000;

    fn replies(ids: &[&str]) -> Vec<CommandReply> {
        let mut history: Vec<Vec<&str>> = ids
            .iter()
            .map(|id| vec!["12/06", "10:15", "S1", "dadmin", "chan", "station", id])
            .collect();
        history.push(vec!["12/05", "09:00", "S1", "dadmin", "logn"]);
        vec![
            reply(CLOCK, &[vec!["2026", "12", "06", "10", "15", "30"]]),
            reply(HISTORY, &history),
        ]
    }

    fn judged(replies: &[CommandReply], memory: &ElementMemory) -> Result<Verdict, String> {
        let input = Inputs {
            element: "cm",
            replies,
            read_at: NOW,
            memory,
            since: None,
            tolerance_ms: 120_000,
        };
        judge(&input, &Stations, RunSummary::default())
    }

    fn run(replies: &[CommandReply], memory: &ElementMemory) -> Verdict {
        judged(replies, memory).unwrap()
    }

    fn failure(replies: &[CommandReply], memory: &ElementMemory) -> String {
        judged(replies, memory).err().unwrap()
    }

    fn ids(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match &c.key.scope {
                Scope::Object { id, .. } => id.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn what_was_not_heard_is_requested_once() {
        let mut memory = ElementMemory {
            covered: NOW - 60_000,
            ..ElementMemory::default()
        };
        let heard = Heard {
            at: NOW - 10_000,
            scope: station("1"),
            login: Some("dadmin".into()),
        };
        memory.recent.push_back(heard.clone());
        let first = run(&replies(&["2", "1"]), &memory);
        assert_eq!(ids(&first.changes), ["2"]);
        assert_eq!(first.judged.paired, [heard]);
        assert!(first.changes.iter().all(|c| c.origin == Origin::Reconcile));
        // The next session reads the same records again, and one more: only that one is new.
        memory.covered = NOW;
        memory.judged = first.judged.lines;
        memory.recent.clear();
        let second = run(&replies(&["3", "2", "1"]), &memory);
        assert_eq!(ids(&second.changes), ["3"]);
        assert!(!second.judged.summary.wrapped);
    }

    /// Records at `times` (hh:mm on 12/06) with qualifiers `ids`.
    fn replies_at(records: &[(&str, &str)]) -> Vec<CommandReply> {
        let mut history: Vec<Vec<&str>> = records
            .iter()
            .map(|(time, id)| vec!["12/06", time, "S1", "dadmin", "chan", "station", id])
            .collect();
        history.push(vec!["12/05", "09:00", "S1", "dadmin", "logn"]);
        vec![
            reply(CLOCK, &[vec!["2026", "12", "06", "10", "15", "30"]]),
            reply(HISTORY, &history),
        ]
    }

    #[test]
    fn a_change_heard_after_its_record_was_judged_is_used_up_by_it() {
        let mut memory = ElementMemory {
            covered: NOW - 60_000,
            ..ElementMemory::default()
        };
        // Session 1: record A (10:14) not heard yet: requested.
        let first = run(&replies_at(&[("10:14", "1")]), &memory);
        assert_eq!(ids(&first.changes), ["1"]);
        // A's syslog line arrives late; then B (10:15, same station) is lost by syslog.
        memory.covered = NOW;
        memory.judged = first.judged.lines;
        memory.recent.push_back(Heard {
            at: NOW - 20_000,
            scope: station("1"),
            login: Some("dadmin".into()),
        });
        let second = run(&replies_at(&[("10:15", "1"), ("10:14", "1")]), &memory);
        assert_eq!(ids(&second.changes), ["1"], "B is requested");
        assert_eq!(second.judged.paired.len(), 1, "A's late line used up by A");
    }

    #[test]
    fn a_cut_record_asks_for_its_whole_type_and_unreadable_ones_fail() {
        let memory = ElementMemory {
            covered: NOW - 60_000,
            ..ElementMemory::default()
        };
        let cut = "1 start 23456789 count 100000000"; // 32 characters, as CM would have cut it
        let v = run(&replies_at(&[("10:15", &cut[..31])]), &memory);
        let c = &v.changes[0];
        assert_eq!(
            c.key.scope,
            Scope::Type {
                ty: "station".into()
            }
        );
        let mut bad = replies_at(&[("10:15", "1")]);
        for _ in 0..3 {
            bad[1].reply.records.push(vec![Field {
                id: None,
                value: "12/06/26".into(),
            }]);
        }
        let e = failure(&bad, &memory);
        assert!(e.contains("3 of 5 records unreadable"), "{e}");
    }

    #[test]
    fn a_history_that_does_not_reach_back_resyncs_the_element() {
        let memory = ElementMemory {
            covered: NOW - 3_600_000,
            ..ElementMemory::default()
        };
        let mut history = replies(&["1"]);
        history[1].reply.records.pop(); // no old record
        let v = run(&history, &memory);
        assert!(v.judged.summary.wrapped);
        let last = v.changes.last().unwrap();
        assert_eq!(
            (&last.key.scope, last.reason.as_deref()),
            (&Scope::Element, Some(WRAPPED))
        );
        // A locked history or a cut reply judges nothing.
        let mut locked = replies(&["1"]);
        locked[1].reply.errors.push(crate::ossi::ErrorLine {
            number: "1".into(),
            field: "00000000".into(),
            code: "2b3c".into(),
            text: "has data locked".into(),
        });
        let e = failure(&locked, &memory);
        assert!(e.contains("has data locked"), "{e}");
    }
}
