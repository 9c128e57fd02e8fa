//! A mailbox's calendar over the fetched window as busy intervals, and what that means
//! at any instant: the calendar state, the availability under a mapping, when the
//! current state began and when it next changes. Pure functions, no clock, no I/O.

use serde::Serialize;

/// Calendar state at an instant. Overlapping items rank (highest wins)
/// OOF > Busy > Tentative > WorkingElsewhere > NoData > Free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalendarState {
    /// Nothing, or only Free items.
    Free,
    /// The server has no data for this span.
    NoData,
    /// A WorkingElsewhere item.
    WorkingElsewhere,
    /// A Tentative item.
    Tentative,
    /// A Busy item.
    Busy,
    /// An item shown as Out of Office.
    Oof,
}

impl CalendarState {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarState::Free => "free",
            CalendarState::NoData => "no-data",
            CalendarState::WorkingElsewhere => "working-elsewhere",
            CalendarState::Tentative => "tentative",
            CalendarState::Busy => "busy",
            CalendarState::Oof => "oof",
        }
    }
}

/// What the presence server shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Availability {
    /// Free to talk.
    Available,
    /// In a meeting.
    InAMeeting,
    /// Away (out of office).
    Away,
    /// Not known: never synced, sync failing, or no data.
    Unknown,
}

impl Availability {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Available => "available",
            Availability::InAMeeting => "in-a-meeting",
            Availability::Away => "away",
            Availability::Unknown => "unknown",
        }
    }

    /// Parses the API's name.
    pub fn parse(text: &str) -> Option<Availability> {
        Some(match text {
            "available" => Availability::Available,
            "in-a-meeting" => Availability::InAMeeting,
            "away" => Availability::Away,
            "unknown" => Availability::Unknown,
            _ => return None,
        })
    }

    /// Every value, for metrics.
    pub const ALL: [Availability; 4] = [
        Availability::Available,
        Availability::InAMeeting,
        Availability::Away,
        Availability::Unknown,
    ];
}

/// How calendar states map to availability where policies differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// Tentative (default available).
    pub tentative: Availability,
    /// WorkingElsewhere (default available).
    pub working_elsewhere: Availability,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            tentative: Availability::Available,
            working_elsewhere: Availability::Available,
        }
    }
}

impl Mapping {
    /// Availability for a calendar state (automatic replies aside).
    pub fn of(&self, state: CalendarState) -> Availability {
        match state {
            CalendarState::Free => Availability::Available,
            CalendarState::Tentative => self.tentative,
            CalendarState::WorkingElsewhere => self.working_elsewhere,
            CalendarState::Busy => Availability::InAMeeting,
            CalendarState::Oof => Availability::Away,
            CalendarState::NoData => Availability::Unknown,
        }
    }
}

/// One busy interval, seconds since the epoch, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Start (inclusive).
    pub start: i64,
    /// End (exclusive).
    pub end: i64,
    /// State while it lasts.
    pub state: CalendarState,
}

/// Automatic-reply settings as fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoReply {
    /// Off, or never fetched.
    #[default]
    Off,
    /// On.
    On,
    /// On inside `[start, end)`.
    Scheduled {
        /// Start, seconds since the epoch.
        start: i64,
        /// End, seconds since the epoch.
        end: i64,
    },
}

impl AutoReply {
    /// Whether replies are on at `t`.
    pub fn active_at(&self, t: i64) -> bool {
        match *self {
            AutoReply::Off => false,
            AutoReply::On => true,
            AutoReply::Scheduled { start, end } => start <= t && t < end,
        }
    }

    fn edges(&self) -> [Option<i64>; 2] {
        match *self {
            AutoReply::Scheduled { start, end } => [Some(start), Some(end)],
            _ => [None, None],
        }
    }
}

/// The calendar over `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    from: i64,
    to: i64,
    intervals: Box<[Interval]>,
}

impl Timeline {
    /// A timeline of `intervals` fetched for `[from, to)`; intervals are clipped to it
    /// and empty ones dropped.
    pub fn new(from: i64, to: i64, intervals: impl IntoIterator<Item = Interval>) -> Timeline {
        let intervals: Vec<Interval> = intervals
            .into_iter()
            .map(|i| Interval {
                start: i.start.max(from),
                end: i.end.min(to),
                state: i.state,
            })
            .filter(|i| i.start < i.end)
            .collect();
        Timeline {
            from,
            to,
            intervals: intervals.into_boxed_slice(),
        }
    }

    /// Interval edges (starts and ends), unsorted, with repeats.
    fn edges(&self) -> impl Iterator<Item = i64> + '_ {
        self.intervals.iter().flat_map(|i| [i.start, i.end])
    }

    /// The fetched window.
    pub fn window(&self) -> (i64, i64) {
        (self.from, self.to)
    }

    /// Calendar state at `t`; `None` outside the fetched window.
    pub fn state_at(&self, t: i64) -> Option<CalendarState> {
        if t < self.from || t >= self.to {
            return None;
        }
        Some(
            self.intervals
                .iter()
                .filter(|i| i.start <= t && t < i.end)
                .map(|i| i.state)
                .max()
                .unwrap_or(CalendarState::Free),
        )
    }

    /// Every instant where something may change: interval edges and automatic-reply
    /// edges, unordered, with repeats.
    fn all_edges<'a>(&'a self, auto: &AutoReply) -> impl Iterator<Item = i64> + 'a {
        self.edges().chain(auto.edges().into_iter().flatten())
    }
}

/// Presence at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// What to show.
    pub availability: Availability,
    /// The calendar's state, `None` when unknown.
    pub calendar: Option<CalendarState>,
    /// Automatic replies are on.
    pub out_of_office: bool,
    /// When this availability began, if inside the window.
    pub since: Option<i64>,
    /// When it next changes, if known.
    pub until: Option<i64>,
}

/// Availability and calendar state at `t` (no since/until).
pub fn point(
    timeline: &Timeline,
    auto: &AutoReply,
    mapping: &Mapping,
    t: i64,
) -> (Availability, Option<CalendarState>, bool) {
    let calendar = timeline.state_at(t);
    let out_of_office = auto.active_at(t);
    let availability = match calendar {
        None => Availability::Unknown,
        Some(_) if out_of_office => Availability::Away,
        Some(state) => mapping.of(state),
    };
    (availability, calendar, out_of_office)
}

/// Presence at `t`, with when it began and when it next changes.
///
/// `until` is the first edge after `t` (inside the window) where availability differs;
/// `since` the last edge at or before `t` (after the window's start, where knowledge
/// begins) with a different availability just before it. Both are the least and the
/// greatest of the edges that qualify: no sorting and no allocation, as this runs for
/// every read of the API and every mailbox of a storm.
pub fn read(timeline: &Timeline, auto: &AutoReply, mapping: &Mapping, t: i64) -> Reading {
    let (availability, calendar, out_of_office) = point(timeline, auto, mapping, t);
    let differs = |at: i64| point(timeline, auto, mapping, at).0 != availability;
    // An edge is only looked at when it would improve on the best so far.
    let until = timeline.all_edges(auto).fold(None, |best, e| {
        let better = e > t && e < timeline.to && best.is_none_or(|b| e < b);
        if better && differs(e) { Some(e) } else { best }
    });
    let since = timeline.all_edges(auto).fold(None, |best, e| {
        let better = e <= t && e > timeline.from && best.is_none_or(|b| e > b);
        if better && differs(e - 1) {
            Some(e)
        } else {
            best
        }
    });
    Reading {
        availability,
        calendar,
        out_of_office,
        since,
        until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn timeline() -> Timeline {
        Timeline::new(
            0,
            24 * H,
            [
                Interval {
                    start: 9 * H,
                    end: 10 * H,
                    state: CalendarState::Tentative,
                },
                Interval {
                    start: 9 * H + 1800,
                    end: 11 * H,
                    state: CalendarState::Busy,
                },
                Interval {
                    start: 11 * H,
                    end: 12 * H,
                    state: CalendarState::Busy,
                },
                Interval {
                    start: 13 * H,
                    end: 14 * H,
                    state: CalendarState::WorkingElsewhere,
                },
                Interval {
                    start: 15 * H,
                    end: 16 * H,
                    state: CalendarState::Oof,
                },
                Interval {
                    start: 17 * H,
                    end: 30 * H,
                    state: CalendarState::NoData,
                },
            ],
        )
    }

    #[test]
    fn precedence_and_mapping() {
        let tl = timeline();
        let m = Mapping::default();
        let at = |t| point(&tl, &AutoReply::Off, &m, t).0;
        assert_eq!(at(8 * H), Availability::Available);
        assert_eq!(
            at(9 * H),
            Availability::Available,
            "tentative maps to available"
        );
        assert_eq!(at(9 * H + 1800), Availability::InAMeeting);
        assert_eq!(at(13 * H), Availability::Available);
        assert_eq!(at(15 * H), Availability::Away);
        assert_eq!(at(17 * H), Availability::Unknown, "no data");
        assert_eq!(
            at(24 * H),
            Availability::Unknown,
            "outside the fetched window"
        );
        assert_eq!(at(-1), Availability::Unknown);
        let strict = Mapping {
            tentative: Availability::InAMeeting,
            working_elsewhere: Availability::Away,
        };
        assert_eq!(
            point(&tl, &AutoReply::Off, &strict, 9 * H).0,
            Availability::InAMeeting
        );
        assert_eq!(
            point(&tl, &AutoReply::Off, &strict, 13 * H).0,
            Availability::Away
        );
    }

    #[test]
    fn since_and_until_skip_edges_that_change_nothing() {
        let tl = timeline();
        let m = Mapping::default();
        // 09:30-12:00 is one meeting as far as availability goes (two back-to-back items).
        let r = read(&tl, &AutoReply::Off, &m, 10 * H);
        assert_eq!(r.availability, Availability::InAMeeting);
        assert_eq!(r.calendar, Some(CalendarState::Busy));
        assert_eq!((r.since, r.until), (Some(9 * H + 1800), Some(12 * H)));
        // Free from 12:00; the working-elsewhere block keeps it available until 15:00.
        let r = read(&tl, &AutoReply::Off, &m, 12 * H);
        assert_eq!(
            (r.availability, r.since, r.until),
            (Availability::Available, Some(12 * H), Some(15 * H))
        );
        // Before the first edge: since unknown (before the window).
        let r = read(&tl, &AutoReply::Off, &m, H);
        assert_eq!((r.since, r.until), (None, Some(9 * H + 1800)));
    }

    #[test]
    fn automatic_replies_win() {
        let tl = timeline();
        let m = Mapping::default();
        let auto = AutoReply::Scheduled {
            start: 10 * H,
            end: 20 * H,
        };
        let r = read(&tl, &auto, &m, 10 * H);
        assert_eq!(
            (r.availability, r.out_of_office),
            (Availability::Away, true)
        );
        assert_eq!(r.since, Some(10 * H));
        let r = read(&tl, &auto, &m, 9 * H + 1800);
        assert_eq!(
            r.until,
            Some(10 * H),
            "the meeting gives way to automatic replies"
        );
        assert_eq!(
            read(&tl, &AutoReply::On, &m, 2 * H).availability,
            Availability::Away
        );
    }

    #[test]
    fn intervals_are_clipped_to_the_window() {
        let tl = Timeline::new(
            100,
            200,
            [Interval {
                start: 50,
                end: 150,
                state: CalendarState::Busy,
            }],
        );
        assert_eq!(tl.state_at(100), Some(CalendarState::Busy));
        assert_eq!(tl.state_at(150), Some(CalendarState::Free));
        let r = read(&tl, &AutoReply::Off, &Mapping::default(), 120);
        assert_eq!((r.since, r.until), (None, Some(150)));
        let r = read(&tl, &AutoReply::Off, &Mapping::default(), 199);
        assert_eq!(
            (r.since, r.until),
            (Some(150), None),
            "the window's end is not a change"
        );
        let r = read(&tl, &AutoReply::Off, &Mapping::default(), 100);
        assert_eq!(r.since, None, "the window's start is not a change either");
    }
}
