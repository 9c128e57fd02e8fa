//! The non-INVITE client transaction of RFC 3261 §17.1.2 as a pure state machine: the
//! caller tells it the time and what arrived, it says what to do. Over UDP the request
//! is retransmitted on timer E (T1, doubling up to T2; every T2 once a provisional
//! response came); over TCP/TLS never. Timer F (64·T1) ends it without a final
//! response; timer K (T4 over UDP, zero otherwise) absorbs retransmitted finals.

use std::time::Duration;

use tokio::time::Instant;

/// The protocol's timer values (§17.1.2.2, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms.
    pub t1: Duration,
    /// The longest retransmit interval, 4 s.
    pub t2: Duration,
    /// How long a message may stay in the network, 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Where a transaction is (§17.1.2.2, Figure 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Sent, nothing heard.
    Trying,
    /// A provisional response came.
    Proceeding,
    /// A final response came; waiting out timer K.
    Completed,
    /// Over.
    Terminated,
}

/// What the transaction user must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the request again (timer E).
    Retransmit,
    /// Pass this final response up (once).
    Deliver,
    /// No final response within timer F: a timeout for the user (§8.1.3.1: a 408).
    TimedOut,
    /// Forget the transaction.
    Terminate,
}

/// One non-INVITE client transaction.
#[derive(Debug, Clone)]
pub struct Transaction {
    timers: Timers,
    reliable: bool,
    state: State,
    /// Timer E: the next retransmission (UDP, Trying or Proceeding).
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer F.
    give_up_at: Instant,
    /// Timer K.
    forget_at: Option<Instant>,
}

impl Transaction {
    /// A transaction whose request was just sent at `now`.
    pub fn start(now: Instant, reliable: bool, timers: Timers) -> Transaction {
        Transaction {
            timers,
            reliable,
            state: State::Trying,
            retransmit_at: (!reliable).then(|| now + timers.t1),
            interval: timers.t1,
            give_up_at: now + timers.t1 * 64,
            forget_at: None,
        }
    }

    /// Where it is.
    pub fn state(&self) -> State {
        self.state
    }

    /// When [`Transaction::on_timer`] must be called next (`None` once terminated).
    pub fn next_timer(&self) -> Option<Instant> {
        match self.state {
            State::Trying | State::Proceeding => Some(
                self.retransmit_at
                    .map_or(self.give_up_at, |e| e.min(self.give_up_at)),
            ),
            State::Completed => self.forget_at,
            State::Terminated => None,
        }
    }

    /// The clock reached `now`: the timers due fire, F before E.
    pub fn on_timer(&mut self, now: Instant) -> Option<Action> {
        match self.state {
            State::Trying | State::Proceeding => {
                if now >= self.give_up_at {
                    self.state = State::Terminated;
                    return Some(Action::TimedOut);
                }
                match self.retransmit_at {
                    Some(at) if now >= at => {
                        self.interval = if self.state == State::Proceeding {
                            self.timers.t2
                        } else {
                            (self.interval * 2).min(self.timers.t2)
                        };
                        self.retransmit_at = Some(now + self.interval);
                        Some(Action::Retransmit)
                    }
                    _ => None,
                }
            }
            State::Completed => match self.forget_at {
                Some(at) if now >= at => {
                    self.state = State::Terminated;
                    Some(Action::Terminate)
                }
                _ => None,
            },
            State::Terminated => None,
        }
    }

    /// A response with `status` matched this transaction at `now`.
    pub fn on_response(&mut self, status: u16, now: Instant) -> Option<Action> {
        match self.state {
            // Timer E runs on; when it fires in Proceeding it is reset to T2.
            State::Trying | State::Proceeding if status < 200 => {
                self.state = State::Proceeding;
                None
            }
            State::Trying | State::Proceeding => {
                self.retransmit_at = None;
                if self.reliable {
                    self.state = State::Terminated;
                } else {
                    self.state = State::Completed;
                    self.forget_at = Some(now + self.timers.t4);
                }
                Some(Action::Deliver)
            }
            // A retransmitted final (or a late provisional): absorbed.
            State::Completed | State::Terminated => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs the timers from `start` to `until`, returning when each action happened.
    fn run(t: &mut Transaction, start: Instant, until: Duration) -> Vec<(u64, Action)> {
        let mut out = Vec::new();
        while let Some(at) = t.next_timer() {
            if at > start + until {
                break;
            }
            if let Some(action) = t.on_timer(at) {
                out.push(((at - start).as_millis() as u64, action));
            }
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn udp_retransmits_on_timer_e_and_gives_up_on_timer_f() {
        let start = Instant::now();
        let mut t = Transaction::start(start, false, Timers::default());
        let actions = run(&mut t, start, Duration::from_secs(40));
        let retransmits: Vec<u64> = actions
            .iter()
            .filter(|(_, a)| *a == Action::Retransmit)
            .map(|(at, _)| *at)
            .collect();
        // 500 ms, doubling to T2 = 4 s: 0.5, 1.5, 3.5, 7.5, 11.5, … until 32 s.
        assert_eq!(&retransmits[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
        assert_eq!(retransmits.last(), Some(&31500));
        assert_eq!(actions.last(), Some(&(32000, Action::TimedOut)));
        assert_eq!(t.state(), State::Terminated);
        assert_eq!(t.next_timer(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_provisional_response_slows_retransmission_to_t2() {
        let start = Instant::now();
        let mut t = Transaction::start(start, false, Timers::default());
        assert_eq!(t.on_timer(start + ms(500)), Some(Action::Retransmit));
        assert_eq!(t.on_response(100, start + ms(600)), None);
        assert_eq!(t.state(), State::Proceeding);
        assert_eq!(t.next_timer(), Some(start + ms(1500)), "the E set before");
        assert_eq!(t.on_timer(start + ms(1500)), Some(Action::Retransmit));
        assert_eq!(t.next_timer(), Some(start + ms(5500)), "then every T2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_response_is_delivered_once_then_absorbed() {
        let start = Instant::now();
        let mut t = Transaction::start(start, false, Timers::default());
        assert_eq!(t.on_response(200, start + ms(10)), Some(Action::Deliver));
        assert_eq!(t.state(), State::Completed);
        assert_eq!(
            t.on_response(200, start + ms(20)),
            None,
            "retransmitted final"
        );
        assert_eq!(t.next_timer(), Some(start + ms(5010)), "timer K = T4");
        assert_eq!(t.on_timer(start + ms(5010)), Some(Action::Terminate));
    }

    #[tokio::test(start_paused = true)]
    async fn reliable_transports_never_retransmit() {
        let start = Instant::now();
        let mut t = Transaction::start(start, true, Timers::default());
        assert_eq!(t.next_timer(), Some(start + Duration::from_secs(32)));
        assert_eq!(
            run(&mut t, start, Duration::from_secs(40)),
            vec![(32000, Action::TimedOut)]
        );
        let mut t = Transaction::start(start, true, Timers::default());
        assert_eq!(t.on_response(412, start), Some(Action::Deliver));
        assert_eq!(t.state(), State::Terminated, "timer K is zero");
    }
}
