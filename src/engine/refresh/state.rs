//! The refresh side of one gateway as a pure state machine: `on(now, input) -> outputs`.
//! No I/O, no clock reads, no locks, no metrics: the [driver](super::driver) sends the
//! reads it asks for and feeds back what came of them. Every rule below has a table
//! test in `state_tests.rs`.
//!
//! 1. **Calendar reads are debounced.** A change of a quiet mailbox (no read for a
//!    change within the last `debounce`) is read at once (leading edge); changes while
//!    that read is in flight or within `debounce` after it was sent cause one trailing
//!    read at the end of that period, never more than one per period, so a mailbox that
//!    never stops changing is still read every `debounce`. Reads no change asked for
//!    (after a subscription, the horizon rolling, retries) start no quiet period.
//! 2. **Batches and slots.** Due mailboxes go out in GetUserAvailability batches of at
//!    most [`MAX_MAILBOXES`] (`calendar_batch`: Graph's getSchedule takes 20), at most [`CALENDAR_SLOTS`] batches in flight; the rest stay
//!    queued (a change meanwhile joins the read already owed) and go as slots free.
//!    Automatic-reply reads have their own [`AUTO_REPLY_SLOTS`], so they never hold up
//!    a calendar read; calendars go first: while calendar reads are due and wait for a
//!    slot (the start-up reads of every mailbox), no automatic-reply read or question
//!    starts, so that the first presence of every mailbox comes as soon as it can.
//! 3. **Each read is sent once; the queue alone retries.** A failed read is queued
//!    again after what the server asked (throttling) or the mailbox's next backoff step
//!    (from [`RETRY_MIN`], doubling with jitter up to [`RETRY_MAX`], per mailbox and
//!    read); a success resets the step. A failed calendar read marks each mailbox with
//!    the problem, named by the gateway (its data is stale); automatic replies keep what
//!    was read before. The first failure of a kind is told loudly, the recovery once.
//!    A mailbox no longer a member is not retried.
//! 4. **How automatic replies are read** ([`AutoReplySource`]): a server configured
//!    older than Exchange 2010 is read one mailbox at a time with GetUserOofSettings;
//!    otherwise GetServiceConfiguration is asked first (nothing is swept meanwhile), and
//!    its answer decides GetMailTips in batches of its recipient limit or one by one. A
//!    question that could not be asked now means one by one meanwhile and asking again
//!    after `oof_refresh`. A server that later refuses GetMailTips as not served means
//!    one by one from then on, the refused batch queued again at once. A source known
//!    from the start (`auto_replies`: Graph's exact settings in batches) asks nothing.
//! 5. **What a tip says** (see [`super::tips::verdict`]): applied when it can tell,
//!    confirmed with GetUserOofSettings when it cannot. Confirmations go before tips.
//! 6. **Sweeps.** After the first reads, a paced sweep reads every member's automatic
//!    replies once per `oof_refresh`; with GetMailTips a second one confirms every member
//!    with GetUserOofSettings once per `oof_verify` (a tip cannot tell "off" from "on
//!    with an empty message").
//! 7. **Membership.** A member that leaves is forgotten everywhere (queued reads,
//!    quiet period, failure counts); the horizon rolling queues every member.
//!
//! Inputs from the gateway's streams and the engine (a change, a full read, joining,
//! leaving) only queue; what the driver feeds (a dispatch, a read's outcome, the horizon
//! rolling) ends with a dispatch: the reads to send now and when to look again.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::dirty::DirtySet;
use super::due::DueSet;
use super::pacer::Pacer;
use super::quiet::QuietPeriods;
use super::tips::TipVerdict;
use crate::config::{GatewayConfig, PresenceConfig};
use crate::engine::backoff::Backoff;
use crate::presence::timeline::{AutoReply, Timeline};
use crate::presence::updates::Update;
use common::mailbox::Mailbox;
pub use ews::ops::get_user_availability::MAX_MAILBOXES;
use ews::response_code::ResponseCode;
use ews::types::RequestServerVersion;

/// GetUserAvailability requests in flight per gateway.
pub const CALENDAR_SLOTS: usize = 4;
/// Automatic-reply requests (and the GetServiceConfiguration question) in flight per
/// gateway.
pub const AUTO_REPLY_SLOTS: usize = 8;
/// First wait before a failed read is sent again: short, since a read is sent once and
/// a blip (a 503 without Retry-After, a reset connection) should cost little.
pub const RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest wait before a failed mailbox is read again.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// Which read of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Read {
    /// GetUserAvailability.
    Calendar,
    /// GetUserOofSettings.
    AutoReplies,
    /// GetMailTips.
    MailTips,
}

/// What a server calls each read: calendars, one mailbox's automatic replies, a batch
/// of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadNames([&'static str; 3]);

/// EWS's operations.
pub const EWS_NAMES: ReadNames =
    ReadNames(["GetUserAvailability", "GetUserOofSettings", "GetMailTips"]);
/// Microsoft Graph's requests.
pub const GRAPH_NAMES: ReadNames = ReadNames([
    "getSchedule",
    "automaticRepliesSetting",
    "automaticRepliesSetting $batch",
]);

impl ReadNames {
    /// The name of `read`.
    pub fn of(self, read: Read) -> &'static str {
        self.0[read.index()]
    }
}

impl Read {
    /// The EWS operation that makes this read.
    pub fn operation(self) -> &'static str {
        EWS_NAMES.of(self)
    }

    fn index(self) -> usize {
        match self {
            Read::Calendar => 0,
            Read::AutoReplies => 1,
            Read::MailTips => 2,
        }
    }
}

/// How the gateway reads automatic replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoReplySource {
    /// Asking GetServiceConfiguration.
    Probing,
    /// GetMailTips, `batch` recipients per request.
    MailTips {
        /// Recipients per request.
        batch: usize,
    },
    /// GetUserOofSettings per mailbox, and why.
    OneByOne {
        /// Why not GetMailTips.
        why: String,
    },
    /// Each mailbox's settings themselves, `batch` per request (Graph's
    /// `automaticRepliesSetting` through `$batch`): exact, so nothing is confirmed.
    Exact {
        /// How they are read, in words.
        how: &'static str,
        /// Mailboxes per request.
        batch: usize,
    },
}

impl AutoReplySource {
    /// How `/v1/gateways` shows it.
    pub fn describe(&self) -> String {
        match self {
            AutoReplySource::Probing => "asking GetServiceConfiguration".to_owned(),
            AutoReplySource::MailTips { batch } => format!("GetMailTips, {batch} per request"),
            AutoReplySource::OneByOne { why } => {
                format!("GetUserOofSettings per mailbox ({why})")
            }
            AutoReplySource::Exact { how, batch } => format!("{how}, {batch} per request"),
        }
    }
}

/// What the state machine is told once, at its start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The gateway's name: the problems it marks mailboxes with start with it.
    pub gateway: Arc<str>,
    /// The quiet period after a change read.
    pub debounce: Duration,
    /// Each member's automatic replies are read once per this.
    pub oof_refresh: Duration,
    /// With GetMailTips, each member is confirmed with GetUserOofSettings once per this.
    pub oof_verify: Duration,
    /// Whether the server may serve GetMailTips (configured as Exchange 2010 or later).
    pub mail_tips_possible: bool,
    /// Mailboxes per calendar read.
    pub calendar_batch: usize,
    /// How automatic replies are read, when that is known from the start (nothing is
    /// asked).
    pub auto_replies: Option<AutoReplySource>,
    /// What the server calls each read (in problems and logs).
    pub names: ReadNames,
}

impl Settings {
    /// The settings of `gateway` under `presence`.
    pub fn of(gateway: &GatewayConfig, presence: &PresenceConfig) -> Settings {
        Settings {
            gateway: gateway.name.as_str().into(),
            debounce: presence.debounce,
            oof_refresh: presence.oof_refresh,
            oof_verify: presence.oof_verify,
            mail_tips_possible: gateway.server_version >= RequestServerVersion::Exchange2010,
            calendar_batch: MAX_MAILBOXES,
            auto_replies: None,
            names: EWS_NAMES,
        }
    }
}

/// A calendar read taken from the queue: the mailbox and when it first became dirty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The mailbox.
    pub mailbox: Mailbox,
    /// When its first unread change came (or the read was queued).
    pub since: Instant,
}

/// Why a read brought nothing to use, and what the server asked us to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// In words, with the operation (`GetUserAvailability failed: …`).
    pub problem: String,
    /// What the server asked us to wait, when it throttled us.
    pub server_wait: Option<Duration>,
}

impl Failure {
    /// A failure the server asked no wait for.
    pub fn without_wait(problem: String) -> Failure {
        Failure {
            problem,
            server_wait: None,
        }
    }
}

/// What came of a GetUserAvailability batch.
#[derive(Debug, Clone)]
pub enum CalendarAnswer {
    /// One result per mailbox asked, in order: its timeline, or the response code the
    /// server gave for it.
    Read {
        /// Per mailbox.
        results: Vec<Result<Timeline, ResponseCode>>,
        /// When the request was sent.
        read_at: Timestamp,
    },
    /// The whole request failed.
    Failed(Failure),
}

/// What came of a GetMailTips batch.
#[derive(Debug, Clone)]
pub enum TipsAnswer {
    /// One verdict per recipient asked, in order.
    Read {
        /// Per recipient.
        verdicts: Vec<TipVerdict>,
        /// When the request was sent.
        read_at: Timestamp,
    },
    /// The server does not serve GetMailTips (as asked), and why.
    NotServed(String),
    /// The request failed.
    Failed(Failure),
}

/// What came of a GetUserOofSettings.
#[derive(Debug, Clone)]
pub enum OofAnswer {
    /// The mailbox's automatic replies.
    Read {
        /// Off, on, or on inside a window.
        auto_reply: AutoReply,
        /// When the request was sent.
        read_at: Timestamp,
    },
    /// The request failed.
    Failed(Failure),
}

/// What came of asking GetServiceConfiguration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// The server answered: read this way.
    Decided(AutoReplySource),
    /// It could not be asked now (why): one by one meanwhile, ask again later.
    Unanswered(String),
}

/// What happens to the refresh side.
#[derive(Debug, Clone)]
pub enum Input {
    /// A notification arrived for the mailbox.
    Changed(Mailbox),
    /// Read the mailbox fully, calendar and automatic replies (subscribed, resubscribed).
    Full(Mailbox),
    /// The mailbox is one of the gateway's from now on.
    Join(Mailbox),
    /// The mailbox is no longer one of the gateway's.
    Leave(Mailbox),
    /// The horizon rolled: every member's calendar is read again.
    RollHorizon,
    /// Send what is due.
    Dispatch,
    /// A GetUserAvailability batch came back.
    Calendar {
        /// What was asked, as taken from the queue.
        batch: Vec<Queued>,
        /// What came of it.
        answer: CalendarAnswer,
    },
    /// A GetMailTips batch came back.
    Tips {
        /// The recipients asked.
        mailboxes: Vec<Mailbox>,
        /// What came of it.
        answer: TipsAnswer,
    },
    /// A GetUserOofSettings came back.
    Oof {
        /// The mailbox asked.
        mailbox: Mailbox,
        /// What came of it.
        answer: OofAnswer,
    },
    /// The GetServiceConfiguration question came back.
    Probed(ProbeAnswer),
}

/// What the driver is to do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send one GetUserAvailability for these mailboxes.
    ReadCalendar(Vec<Queued>),
    /// Send one GetMailTips for these recipients.
    ReadTips(Vec<Mailbox>),
    /// Send one GetUserOofSettings.
    ReadOof(Mailbox),
    /// Ask GetServiceConfiguration, routed to and impersonating `anchor`.
    Probe {
        /// The member the question goes as (none when the gateway has none yet).
        anchor: Option<Mailbox>,
    },
    /// Hand this to the presence core.
    Apply(Mailbox, Update),
    /// A change was served `waited` after it was first seen (the latency metric).
    Served {
        /// From the first unread change to its read applied.
        waited: Duration,
    },
    /// Reads failed: count them, log (loudly when the first of its kind in a row).
    Failed {
        /// Which read.
        read: Read,
        /// How many mailboxes.
        mailboxes: usize,
        /// Why.
        problem: String,
        /// The longest wait before they are sent again.
        retry_in: Duration,
        /// The first failure since this read last worked.
        loud: bool,
    },
    /// A read that was failing works again.
    Recovered(Read),
    /// Automatic replies are read another way from now on.
    SourceChanged(AutoReplySource),
    /// Look again at this instant, or when an input comes (`None`).
    WakeAt(Option<Instant>),
}

/// One gateway's refresh side.
#[derive(Debug)]
pub struct RefreshState {
    settings: Settings,
    members: BTreeSet<Mailbox>,
    /// Calendar reads owed.
    dirty: DirtySet,
    quiet: QuietPeriods,
    /// Automatic-reply reads owed, the gateway's way.
    soon: DueSet,
    /// GetUserOofSettings owed (a tip could not tell, verification, retry).
    confirm: DueSet,
    source: AutoReplySource,
    /// When to ask GetServiceConfiguration again.
    probe_at: Option<Instant>,
    /// Whether the first dispatch settled how to read automatic replies.
    asked: bool,
    sweep: Pacer,
    verify: Pacer,
    /// Failed reads in a row, per mailbox and read.
    failures: HashMap<(Mailbox, Read), u32>,
    backoff: Backoff,
    /// Whether each read is failing (to tell a change once).
    failing: [bool; 3],
    calendar_in_flight: usize,
    auto_in_flight: usize,
}

impl RefreshState {
    /// Nothing queued; how automatic replies are read is settled at the first
    /// dispatch. Retries wait `backoff`'s steps for the failures in a row.
    pub fn new(settings: Settings, backoff: Backoff) -> RefreshState {
        let decided = settings.auto_replies.clone();
        RefreshState {
            quiet: QuietPeriods::new(settings.debounce),
            settings,
            members: BTreeSet::new(),
            dirty: DirtySet::default(),
            soon: DueSet::default(),
            confirm: DueSet::default(),
            asked: decided.is_some(),
            source: decided.unwrap_or(AutoReplySource::Probing),
            probe_at: None,
            sweep: Pacer::default(),
            verify: Pacer::default(),
            failures: HashMap::new(),
            backoff,
            failing: [false; 3],
            calendar_in_flight: 0,
            auto_in_flight: 0,
        }
    }

    /// What the server calls each read.
    pub fn names(&self) -> ReadNames {
        self.settings.names
    }

    /// How automatic replies are read now.
    pub fn source(&self) -> &AutoReplySource {
        &self.source
    }

    /// Whether a calendar read of `mailbox` is owed.
    pub fn is_queued(&self, mailbox: &Mailbox) -> bool {
        self.dirty.contains(mailbox)
    }

    /// Whether a GetUserOofSettings of `mailbox` is owed.
    #[cfg(test)]
    pub fn confirm_queued(&self, mailbox: &Mailbox) -> bool {
        self.confirm.contains(mailbox)
    }

    /// Forgets every read owed.
    #[cfg(test)]
    pub fn clear(&mut self) {
        self.dirty.clear();
        self.soon.clear();
        self.confirm.clear();
    }

    /// Takes `input` at `now`; returns what to do.
    pub fn on(&mut self, now: Instant, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Changed(mailbox) => {
                let at = self.quiet.until(&mailbox, now).unwrap_or(now);
                self.dirty.change(&mailbox, now, at);
                return out;
            }
            Input::Full(mailbox) => {
                self.soon.insert_keep(mailbox.clone(), now);
                self.dirty.background(&mailbox, now, now);
                return out;
            }
            Input::Join(mailbox) => {
                self.members.insert(mailbox);
                return out;
            }
            Input::Leave(mailbox) => {
                self.forget(&mailbox);
                return out;
            }
            Input::RollHorizon => {
                for m in &self.members {
                    self.dirty.background(m, now, now);
                }
            }
            Input::Dispatch => {}
            Input::Calendar { batch, answer } => {
                self.calendar_in_flight = self.calendar_in_flight.saturating_sub(1);
                self.calendar_answered(now, batch, answer, &mut out);
            }
            Input::Tips { mailboxes, answer } => {
                self.auto_in_flight = self.auto_in_flight.saturating_sub(1);
                self.tips_answered(now, mailboxes, answer, &mut out);
            }
            Input::Oof { mailbox, answer } => {
                self.auto_in_flight = self.auto_in_flight.saturating_sub(1);
                self.oof_answered(now, mailbox, answer, &mut out);
            }
            Input::Probed(answer) => {
                self.auto_in_flight = self.auto_in_flight.saturating_sub(1);
                let source = match answer {
                    ProbeAnswer::Decided(source) => source,
                    ProbeAnswer::Unanswered(why) => {
                        self.probe_at = Some(now + self.settings.oof_refresh);
                        AutoReplySource::OneByOne {
                            why: format!(
                                "GetServiceConfiguration failed, asking again later: {why}"
                            ),
                        }
                    }
                };
                self.set_source(source, &mut out);
            }
        }
        self.dispatch(now, &mut out);
        out
    }

    fn forget(&mut self, mailbox: &Mailbox) {
        self.members.remove(mailbox);
        self.dirty.remove(mailbox);
        self.quiet.remove(mailbox);
        self.soon.remove(mailbox);
        self.confirm.remove(mailbox);
        for read in [Read::Calendar, Read::AutoReplies, Read::MailTips] {
            self.failures.remove(&(mailbox.clone(), read));
        }
    }

    fn set_source(&mut self, source: AutoReplySource, out: &mut Vec<Output>) {
        if self.source != source {
            self.source = source.clone();
            out.push(Output::SourceChanged(source));
        }
    }

    /// Sends what is due and free slots allow; says when to look again.
    fn dispatch(&mut self, now: Instant, out: &mut Vec<Output>) {
        let free = CALENDAR_SLOTS.saturating_sub(self.calendar_in_flight);
        let per_read = self.settings.calendar_batch.max(1);
        let (taken, calendar_next) = self.dirty.take_due(now, free * per_read);
        for t in taken.iter().filter(|t| t.change) {
            self.quiet.read_sent(&t.mailbox, now);
        }
        let queued: Vec<Queued> = taken
            .into_iter()
            .map(|t| Queued {
                mailbox: t.mailbox,
                since: t.first,
            })
            .collect();
        for batch in queued.chunks(per_read) {
            self.calendar_in_flight += 1;
            out.push(Output::ReadCalendar(batch.to_vec()));
        }
        let mut next: Vec<Instant> = calendar_next.into_iter().collect();
        if self.dirty.any_due(now) {
            // Calendars first: a finished read wakes the dispatch again.
            out.push(Output::WakeAt(next.into_iter().min()));
            return;
        }
        if !self.asked {
            self.asked = true;
            if self.settings.mail_tips_possible {
                self.probe_at = Some(now);
            } else {
                let why = "server_version is older than Exchange2010".to_owned();
                self.set_source(AutoReplySource::OneByOne { why }, out);
            }
        }
        if self.probe_at.is_some_and(|at| at <= now) && self.auto_slot() {
            self.probe_at = None;
            out.push(Output::Probe {
                anchor: self.members.first().cloned(),
            });
        }
        next.extend(self.probe_at.filter(|at| *at > now));
        let batch = match self.source {
            AutoReplySource::MailTips { batch } | AutoReplySource::Exact { batch, .. } => batch,
            _ => 1,
        };
        if self.source != AutoReplySource::Probing {
            let (due, at) = self
                .sweep
                .step(now, &self.members, self.settings.oof_refresh, batch);
            for m in due {
                self.soon.insert_keep(m, now);
            }
            next.push(at);
        }
        if matches!(self.source, AutoReplySource::MailTips { .. }) {
            let (due, at) = self
                .verify
                .step(now, &self.members, self.settings.oof_verify, 1);
            for m in due {
                self.confirm.insert_keep(m, now);
            }
            next.push(at);
        }
        // GetUserOofSettings first: they settle what a tip could not.
        while self.has_auto_slot() {
            let Some(mailbox) = self.confirm.take_due(now, 1).pop() else {
                break;
            };
            self.auto_in_flight += 1;
            out.push(Output::ReadOof(mailbox));
        }
        while self.source != AutoReplySource::Probing && self.has_auto_slot() {
            let mut taken = self.soon.take_due(now, batch);
            if taken.is_empty() {
                break;
            }
            self.auto_in_flight += 1;
            out.push(match self.source {
                AutoReplySource::MailTips { .. } | AutoReplySource::Exact { .. } => {
                    Output::ReadTips(taken)
                }
                // One by one: the batch is one mailbox.
                _ => match taken.pop() {
                    Some(mailbox) => Output::ReadOof(mailbox),
                    None => break,
                },
            });
        }
        next.extend(self.soon.next_after(now));
        next.extend(self.confirm.next_after(now));
        out.push(Output::WakeAt(next.into_iter().min()));
    }

    fn has_auto_slot(&self) -> bool {
        self.auto_in_flight < AUTO_REPLY_SLOTS
    }

    /// Takes an automatic-reply slot if one is free.
    fn auto_slot(&mut self) -> bool {
        let free = self.has_auto_slot();
        if free {
            self.auto_in_flight += 1;
        }
        free
    }

    fn calendar_answered(
        &mut self,
        now: Instant,
        batch: Vec<Queued>,
        answer: CalendarAnswer,
        out: &mut Vec<Output>,
    ) {
        let mailboxes = || batch.iter().map(|q| q.mailbox.clone()).collect::<Vec<_>>();
        match answer {
            CalendarAnswer::Read { results, read_at } if results.len() == batch.len() => {
                let mut refused = Vec::new();
                let mut code = None;
                for (queued, result) in batch.into_iter().zip(results) {
                    match result {
                        Ok(timeline) => {
                            self.failures
                                .remove(&(queued.mailbox.clone(), Read::Calendar));
                            out.push(Output::Apply(
                                queued.mailbox,
                                Update::Timeline { timeline, read_at },
                            ));
                            out.push(Output::Served {
                                waited: now.saturating_duration_since(queued.since),
                            });
                        }
                        Err(c) => {
                            code = Some(c);
                            refused.push(queued.mailbox);
                        }
                    }
                }
                match code {
                    None => self.recovered(Read::Calendar, out),
                    Some(code) => {
                        let failure = Failure::without_wait(format!(
                            "{}: {code}",
                            self.settings.names.of(Read::Calendar)
                        ));
                        self.failed(now, Read::Calendar, refused, failure, out);
                    }
                }
            }
            CalendarAnswer::Read { results, .. } => {
                let failure = Failure::without_wait(format!(
                    "{} answered {} mailboxes for {} asked",
                    self.settings.names.of(Read::Calendar),
                    results.len(),
                    batch.len()
                ));
                self.failed(now, Read::Calendar, mailboxes(), failure, out);
            }
            CalendarAnswer::Failed(failure) => {
                self.failed(now, Read::Calendar, mailboxes(), failure, out);
            }
        }
    }

    fn tips_answered(
        &mut self,
        now: Instant,
        mailboxes: Vec<Mailbox>,
        answer: TipsAnswer,
        out: &mut Vec<Output>,
    ) {
        match answer {
            TipsAnswer::Read { verdicts, read_at } if verdicts.len() == mailboxes.len() => {
                for (mailbox, verdict) in mailboxes.into_iter().zip(verdicts) {
                    self.failures.remove(&(mailbox.clone(), Read::MailTips));
                    match verdict {
                        TipVerdict::Apply(auto_reply) => out.push(Output::Apply(
                            mailbox,
                            Update::AutoReply {
                                auto_reply,
                                read_at,
                            },
                        )),
                        TipVerdict::Agrees => {}
                        TipVerdict::Confirm => self.confirm.insert_keep(mailbox, now),
                    }
                }
                self.recovered(Read::MailTips, out);
            }
            TipsAnswer::Read { verdicts, .. } => {
                let failure = Failure::without_wait(format!(
                    "{} answered {} recipients for {} asked",
                    self.settings.names.of(Read::MailTips),
                    verdicts.len(),
                    mailboxes.len()
                ));
                self.failed(now, Read::MailTips, mailboxes, failure, out);
            }
            TipsAnswer::NotServed(why) => {
                self.set_source(AutoReplySource::OneByOne { why }, out);
                for m in mailboxes {
                    self.soon.insert_keep(m, now);
                }
            }
            TipsAnswer::Failed(failure) => {
                self.failed(now, Read::MailTips, mailboxes, failure, out);
            }
        }
    }

    fn oof_answered(
        &mut self,
        now: Instant,
        mailbox: Mailbox,
        answer: OofAnswer,
        out: &mut Vec<Output>,
    ) {
        match answer {
            OofAnswer::Read {
                auto_reply,
                read_at,
            } => {
                self.failures.remove(&(mailbox.clone(), Read::AutoReplies));
                out.push(Output::Apply(
                    mailbox,
                    Update::AutoReply {
                        auto_reply,
                        read_at,
                    },
                ));
                self.recovered(Read::AutoReplies, out);
            }
            OofAnswer::Failed(failure) => {
                self.failed(now, Read::AutoReplies, vec![mailbox], failure, out);
            }
        }
    }

    /// Reads of `mailboxes` failed: mark them (calendar), queue them again, tell it.
    fn failed(
        &mut self,
        now: Instant,
        read: Read,
        mailboxes: Vec<Mailbox>,
        failure: Failure,
        out: &mut Vec<Output>,
    ) {
        let count = mailboxes.len();
        let shown: Arc<str> = format!("{}: {}", self.settings.gateway, failure.problem).into();
        let mut retry_in = Duration::ZERO;
        for mailbox in mailboxes {
            // A failed calendar read makes the data stale (which can end in unknown: the
            // scheduler must know); automatic replies keep what was read before.
            if read == Read::Calendar {
                out.push(Output::Apply(
                    mailbox.clone(),
                    Update::Problem(Some(shown.clone())),
                ));
            }
            retry_in = retry_in.max(self.retry(now, &mailbox, read, failure.server_wait));
        }
        let loud = !std::mem::replace(&mut self.failing[read.index()], true);
        out.push(Output::Failed {
            read,
            mailboxes: count,
            problem: failure.problem,
            retry_in,
            loud,
        });
    }

    /// Queues a failed read of `mailbox` again after `server_wait` or its next backoff
    /// step; returns the wait (zero for a mailbox no longer a member: not retried).
    fn retry(
        &mut self,
        now: Instant,
        mailbox: &Mailbox,
        read: Read,
        server_wait: Option<Duration>,
    ) -> Duration {
        if !self.members.contains(mailbox) {
            return Duration::ZERO;
        }
        let failures = self.failures.entry((mailbox.clone(), read)).or_insert(0);
        let attempt = *failures;
        *failures = failures.saturating_add(1);
        let wait = server_wait.unwrap_or_else(|| self.backoff.delay_for(attempt));
        let at = now + wait;
        match read {
            Read::Calendar => self.dirty.background(mailbox, now, at),
            Read::AutoReplies => self.confirm.insert_keep(mailbox.clone(), at),
            Read::MailTips => self.soon.insert_keep(mailbox.clone(), at),
        }
        wait
    }

    fn recovered(&mut self, read: Read, out: &mut Vec<Output>) {
        if std::mem::replace(&mut self.failing[read.index()], false) {
            out.push(Output::Recovered(read));
        }
    }
}
