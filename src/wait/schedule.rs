//! The wait stage's polling schedule: which calls each round makes, and
//! when the next round starts. A pure state machine: the caller passes the
//! time in (`now`) and reports how each call went, so that the schedule is
//! unit-tested with a fake clock (below), and the loop in `wait::until_done`
//! only fetches and sleeps.
//!
//! A round costs about the same for 10 hosts as for 2,000: one
//! ListCommands, one ListObjectsV2 of the run's open keys, and
//! ListCommandInvocations only for commands whose counts show a host that
//! ended without an upload (docs/polling.md).

use std::time::{Duration, Instant};

/// The shortest pause between SSM polls (SSM needs about that long to list
/// a new command, and faster polling only spends its rate limit).
pub const MIN_POLL: Duration = Duration::from_secs(2);
/// After the recording, the bucket is listed this often: S3 allows
/// thousands of LISTs a second per prefix, and each tick is latency the
/// on-call engineer waits for a host's flamegraph.
pub const UPLOAD_TICK: Duration = Duration::from_millis(500);
/// After the recording, every this many SSM rounds (~30 s) the open
/// commands' invocations are listed whatever the counts say.
pub const SWEEP_ROUNDS: u32 = 15;

/// Pause before the next SSM poll. While the hosts record, back off from
/// 2 s to 5 s (a long recording costs few calls) but wake at the
/// recording's end; after it, poll every 2 s, since hosts finish within
/// seconds of it.
pub fn poll_interval(round: u32, until_recording_ends: Duration) -> Duration {
    if until_recording_ends.is_zero() {
        return MIN_POLL;
    }
    let ms = 2000.0 * 1.25f64.powi(round.min(10) as i32);
    let backoff = Duration::from_millis(ms.min(5000.0) as u64);
    backoff.min(until_recording_ends).max(MIN_POLL)
}

/// Backoff for one kind of call: doubles (to 32×) on each throttled or
/// failed round, halves on each good one, and adds up to 50 % jitter so
/// that many flamefire runs in one account do not poll in lockstep.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    factor: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { factor: 1 }
    }
}

impl Backoff {
    pub fn failed(&mut self) {
        self.factor = (self.factor * 2).min(32);
    }

    pub fn succeeded(&mut self) {
        self.factor = (self.factor / 2).max(1);
    }

    /// `base` stretched by the current factor, with jitter when backing off.
    pub fn delay(&self, base: Duration) -> Duration {
        if self.factor == 1 {
            return base;
        }
        let stretched = base * self.factor;
        stretched + stretched.mul_f64(fastrand::f64() * 0.5)
    }
}

/// Which ListCommandInvocations calls a round makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocations {
    /// None.
    Skip,
    /// For the commands `Fleet::needs_invocations` picks from this round's
    /// ListCommands (hosts that ended without an upload).
    Needy,
    /// For every command with open hosts: the per-host display of a small
    /// fleet, a periodic sweep after the recording, and the last round.
    Sweep,
}

/// The calls of one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// The deadline passed: one last full round (SSM included, whatever
    /// the backoff), so that hosts SSM knows failed are not called GaveUp.
    pub last: bool,
    /// ListCommands (its answer comes before the bucket's: every host it
    /// counts as ended has its `meta.json` listed by then).
    pub list_commands: bool,
    /// ListObjectsV2 of the open hosts' keys.
    pub list_uploads: bool,
    pub invocations: Invocations,
}

/// When to poll what. See the module's doc.
#[derive(Debug, Clone)]
pub struct Schedule {
    recording_ends: Instant,
    deadline: Instant,
    per_host: bool,
    /// SSM rounds so far.
    round: u32,
    ssm: Backoff,
    s3: Backoff,
    /// ListCommandInvocations backs off on its own: its throttling says
    /// nothing about ListCommands'.
    lci: Backoff,
    next_ssm: Instant,
    next_s3: Instant,
    next_lci: Instant,
}

impl Schedule {
    /// A schedule whose first round is due at `start`. `per_host`: list
    /// every open command's invocations each SSM round, for a display with
    /// one line per host (only for a fleet small enough for such lines).
    pub fn new(start: Instant, recording_ends: Instant, deadline: Instant, per_host: bool) -> Self {
        Schedule {
            recording_ends,
            deadline,
            per_host,
            round: 0,
            ssm: Backoff::default(),
            s3: Backoff::default(),
            lci: Backoff::default(),
            next_ssm: start,
            next_s3: start,
            next_lci: start,
        }
    }

    /// The calls due at `now`.
    pub fn round(&self, now: Instant) -> Round {
        let last = now >= self.deadline;
        let ssm_due = last || now >= self.next_ssm;
        let sweep = last
            || (ssm_due
                && (self.per_host
                    || (now >= self.recording_ends && self.round % SWEEP_ROUNDS == 0)));
        let invocations = if sweep {
            Invocations::Sweep
        } else if ssm_due && now >= self.next_lci {
            Invocations::Needy
        } else {
            Invocations::Skip
        };
        Round {
            last,
            list_commands: ssm_due,
            list_uploads: ssm_due || now >= self.next_s3,
            invocations,
        }
    }

    /// How ListCommands went (a throttle or a network failure: `false`).
    pub fn commands_listed(&mut self, ok: bool) {
        record(&mut self.ssm, ok);
    }

    /// How ListObjectsV2 went.
    pub fn uploads_listed(&mut self, ok: bool) {
        record(&mut self.s3, ok);
    }

    /// How this round's ListCommandInvocations went, all of them: one
    /// failure per round, however many commands it hit, and none is tried
    /// again before the backoff allows.
    pub fn invocations_listed(&mut self, now: Instant, ok: bool) {
        record(&mut self.lci, ok);
        if !ok {
            self.next_lci = now + self.lci.delay(MIN_POLL);
        }
    }

    /// After a round that was not the last: when the next one starts.
    pub fn next_wake(&mut self, done: &Round, now: Instant) -> Instant {
        let until_end = self.recording_ends.saturating_duration_since(now);
        if done.list_commands {
            self.next_ssm = now + self.ssm.delay(poll_interval(self.round, until_end));
            self.round += 1;
        }
        // The bucket has nothing new before the recording ends.
        self.next_s3 = if until_end.is_zero() {
            now + self.s3.delay(UPLOAD_TICK)
        } else {
            self.next_ssm
        };
        self.next_ssm.min(self.next_s3).min(self.deadline)
    }
}

fn record(backoff: &mut Backoff, ok: bool) {
    if ok {
        backoff.succeeded();
    } else {
        backoff.failed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::aws::{CommandReport, InvocationReport};
    use crate::dispatch::Sent;
    use crate::model::{Host, InstanceId};
    use crate::wait::Fleet;

    /// What one round asked the fake AWS, at a moment of the fake clock:
    /// (seconds since the start, ListCommands pages, ListObjectsV2 pages,
    /// ListCommandInvocations calls).
    type Calls = (f64, usize, usize, usize);

    fn id(n: usize) -> InstanceId {
        InstanceId::parse(&format!("i-{n:017x}")).unwrap()
    }

    /// A whole wait for `hosts` hosts on a fake clock, against a fake AWS
    /// that counts calls: a 30 s recording; host n uploads its `meta.json`
    /// between 31 and 33 s (spread by n), and SSM counts it done 1 s later.
    /// S3 pages 1,000 keys (each host uploads two), SSM 50 commands.
    fn simulate(hosts: usize) -> Vec<Calls> {
        let t0 = Instant::now(); // the fake clock's origin, never read again
        let recording = Duration::from_secs(30);
        let sent: Vec<Sent> = (0..hosts)
            .collect::<Vec<_>>()
            .chunks(50)
            .enumerate()
            .map(|(c, ns)| Sent {
                command_id: format!("c{c:03}"),
                hosts: ns
                    .iter()
                    .map(|&n| Host {
                        id: id(n),
                        name: None,
                    })
                    .collect(),
            })
            .collect();
        let uploaded_at = |n: usize| {
            recording + Duration::from_secs(1) + Duration::from_millis((n * 2000 / hosts) as u64)
        };
        let counted_at = |n: usize| uploaded_at(n) + Duration::from_secs(1);
        let mut fleet = Fleet::new(&sent);
        let mut schedule = Schedule::new(t0, t0 + recording, t0 + Duration::from_secs(120), false);
        let mut now = t0;
        let mut calls = Vec::new();
        loop {
            let round = schedule.round(now);
            let at = now - t0;
            let (mut lc, mut lo, mut lci) = (0, 0, 0);
            let commands: Vec<CommandReport> = if round.list_commands {
                lc = sent.len().div_ceil(50);
                schedule.commands_listed(true);
                sent.iter()
                    .enumerate()
                    .map(|(c, s)| {
                        let n = s.hosts.len();
                        let done = (c * 50..c * 50 + n)
                            .filter(|&h| counted_at(h) <= at)
                            .count();
                        let status = if done == n { "Success" } else { "InProgress" };
                        CommandReport {
                            command_id: s.command_id.clone(),
                            status: status.into(),
                            status_details: status.into(),
                            completed: done as u32,
                            errors: 0,
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
            if round.list_uploads {
                let open: Vec<usize> = (0..hosts)
                    .filter(|&n| !fleet.state(&id(n)).unwrap().status.is_terminal())
                    .collect();
                if let (Some(&first), Some(&last)) = (open.first(), open.last()) {
                    let keys: Vec<InstanceId> = (first..=last)
                        .filter(|&n| uploaded_at(n) <= at)
                        .map(id)
                        .collect();
                    lo = (keys.len() * 2).div_ceil(1000).max(1);
                    fleet.observe_uploads(&keys);
                }
                schedule.uploads_listed(true);
            }
            let needy = fleet.invocations_to_list(round.invocations, &commands);
            for command in &needy {
                lci += 1;
                let c: usize = command[1..].parse().unwrap();
                let reports: Vec<InvocationReport> = sent[c]
                    .hosts
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        let done = counted_at(c * 50 + i) <= at;
                        let status = if done { "Success" } else { "InProgress" };
                        InvocationReport {
                            instance_id: h.id.to_string(),
                            status: status.into(),
                            status_details: status.into(),
                            response_code: done.then_some(0),
                            output: String::new(),
                            trace_output: String::new(),
                        }
                    })
                    .collect();
                fleet.observe(command, &reports);
            }
            if !needy.is_empty() {
                schedule.invocations_listed(now, true);
            }
            calls.push(((at.as_millis() as f64) / 1000.0, lc, lo, lci));
            if fleet.is_done() || round.last {
                return calls;
            }
            now = schedule.next_wake(&round, now);
        }
    }

    #[test]
    fn a_round_costs_about_the_same_for_10_hosts_as_for_2000() {
        let small = simulate(10);
        let large = simulate(2000);
        println!("10 hosts: {small:?}\n2000 hosts: {large:?}");
        let when = |calls: &[Calls]| calls.iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(
            when(&small),
            when(&large),
            "the same rounds at the same moments"
        );
        assert_eq!(small, large, "the same calls in every round");
        // While the hosts record: one ListCommands and one (empty)
        // ListObjectsV2 a round, backing off from 2 s towards 5 s and
        // waking at the recording's end (30 s); then the bucket every
        // 0.5 s and SSM every 2 s until every host uploaded. No
        // ListCommandInvocations: every host that ended uploaded.
        assert_eq!(
            small,
            [
                (0.0, 1, 1, 0),
                (2.0, 1, 1, 0),
                (4.5, 1, 1, 0),
                (7.625, 1, 1, 0),
                (11.531, 1, 1, 0),
                (16.413, 1, 1, 0),
                (21.413, 1, 1, 0),
                (26.413, 1, 1, 0),
                (30.0, 1, 1, 0),
                (30.5, 0, 1, 0),
                (31.0, 0, 1, 0),
                (31.5, 0, 1, 0),
                (32.0, 1, 1, 0),
                (32.5, 0, 1, 0),
                (33.0, 0, 1, 0),
            ]
        );
    }

    #[test]
    fn a_throttled_poll_backs_off_and_the_deadline_forces_a_last_full_round() {
        let t0 = Instant::now(); // the fake clock's origin
        let secs = Duration::from_secs;
        let mut s = Schedule::new(t0, t0 + secs(30), t0 + secs(40), false);
        let first = s.round(t0);
        assert_eq!(
            first,
            Round {
                last: false,
                list_commands: true,
                list_uploads: true,
                invocations: Invocations::Needy,
            }
        );
        s.commands_listed(false);
        s.uploads_listed(true);
        let wake = s.next_wake(&first, t0) - t0;
        // 2 s doubled, plus up to 50 % jitter.
        assert!(wake >= secs(4) && wake <= secs(6), "{wake:?}");
        let between = s.round(t0 + secs(3));
        assert!(!between.list_commands && !between.list_uploads);
        s.invocations_listed(t0 + secs(4), false);
        let at_deadline = s.round(t0 + secs(40));
        assert!(at_deadline.last && at_deadline.list_commands);
        assert_eq!(at_deadline.invocations, Invocations::Sweep);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_recovers() {
        let base = Duration::from_secs(2);
        let mut b = Backoff::default();
        assert_eq!(b.delay(base), base);
        b.failed();
        b.failed();
        let d = b.delay(base);
        assert!(d >= base * 4 && d <= base * 6, "{d:?}");
        for _ in 0..10 {
            b.failed();
        }
        assert!(b.delay(base) <= base * 48, "capped");
        for _ in 0..10 {
            b.succeeded();
        }
        assert_eq!(b.delay(base), base);
    }

    #[test]
    fn polling_backs_off_from_two_to_five_seconds_then_follows_the_end() {
        let long = Duration::from_secs(300);
        assert_eq!(poll_interval(0, long), Duration::from_secs(2));
        assert!(poll_interval(2, long) > poll_interval(1, long));
        assert_eq!(poll_interval(50, long), Duration::from_secs(5));
        // Wakes at the end of the recording, but never polls faster than 2 s.
        assert_eq!(
            poll_interval(50, Duration::from_millis(3500)),
            Duration::from_millis(3500)
        );
        assert_eq!(
            poll_interval(50, Duration::from_millis(500)),
            Duration::from_secs(2)
        );
        assert_eq!(poll_interval(50, Duration::ZERO), Duration::from_secs(2));
    }
}
