//! A partition leader's view of its followers (Kafka's `Partition` and
//! `Replica` fetch state): each follower's log end from its fetches, the
//! in-sync replica set, the high watermark, and when acks=all may answer.
//!
//! ISR changes are proposed to the controller (AlterPartition) and take
//! effect when it commits them. Until then the leader counts the larger of
//! the two sets (KIP-497's "maximal ISR"): a follower being added counts at
//! once, one being removed still counts, so the high watermark never moves
//! past what a committed ISR holds, whichever way the controller decides.

use std::collections::{BTreeMap, BTreeSet};

use super::NodeId;

/// What the leader holds about one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerView {
    /// Its log end as of its last fetch (-1: no fetch in this epoch yet).
    pub log_end: i64,
    /// Its log start as its last fetch gave it (-1: not known yet).
    pub log_start: i64,
    pub last_fetch_ms: u64,
    /// When it last had everything the leader had (Kafka's
    /// lastCaughtUpTimeMs).
    pub last_caught_up_ms: u64,
    /// The leader's log end when it answered the previous fetch.
    pub leader_end_at_last_fetch: i64,
    /// It fetched since the leader last looked at its ISR: only such a
    /// follower may be proposed to join (Kafka expands the ISR on a
    /// follower's fetch, never for one that stopped fetching).
    pub fetched_since_check: bool,
}

/// An ISR change waiting for the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterIsr {
    pub leader: NodeId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: BTreeSet<NodeId>,
}

/// Why acks=all cannot be answered with success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcksRefused {
    /// The ISR is below min.insync.replicas before the append.
    NotEnoughReplicas,
    /// It fell below min.insync.replicas before the batch was replicated.
    NotEnoughReplicasAfterAppend,
}

/// The leader's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderConfig {
    /// min.insync.replicas.
    pub min_isr: usize,
    /// replica.lag.time.max.ms.
    pub replica_lag_max_ms: u64,
    /// An ISR change unanswered this long is proposed again (the request or
    /// its answer may be lost).
    pub alter_retry_ms: u64,
}

/// One partition's leader state for one leader epoch.
#[derive(Debug, Clone)]
pub struct Leader {
    pub node: NodeId,
    pub leader_epoch: i32,
    /// The controller's version of the partition's ISR.
    pub partition_epoch: i32,
    /// Where this leader epoch's first record goes (the log end when it
    /// took over): a follower joins the ISR only once past it.
    pub epoch_start: i64,
    pub config: LeaderConfig,
    /// The ISR as the controller committed it (the leader included).
    isr: BTreeSet<NodeId>,
    /// The change proposed and not yet answered, with when it was sent.
    pending: Option<(AlterIsr, u64)>,
    followers: BTreeMap<NodeId, FollowerView>,
    high_watermark: i64,
}

impl Leader {
    /// Takes leadership of an epoch: every follower counts as caught up
    /// now (as Kafka does), with its log end unknown until it fetches.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: NodeId,
        leader_epoch: i32,
        partition_epoch: i32,
        replicas: &[NodeId],
        isr: &[NodeId],
        log_end: i64,
        high_watermark: i64,
        config: LeaderConfig,
        now_ms: u64,
    ) -> Leader {
        let followers = replicas
            .iter()
            .filter(|&&r| r != node)
            .map(|&r| {
                (
                    r,
                    FollowerView {
                        log_end: -1,
                        log_start: -1,
                        last_fetch_ms: now_ms,
                        last_caught_up_ms: now_ms,
                        leader_end_at_last_fetch: -1,
                        fetched_since_check: false,
                    },
                )
            })
            .collect();
        Leader {
            node,
            leader_epoch,
            partition_epoch,
            epoch_start: log_end,
            config,
            isr: isr.iter().copied().collect(),
            pending: None,
            followers,
            high_watermark: high_watermark.min(log_end),
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn isr(&self) -> &BTreeSet<NodeId> {
        &self.isr
    }

    pub fn pending(&self) -> Option<&AlterIsr> {
        self.pending.as_ref().map(|(p, _)| p)
    }

    pub fn follower(&self, node: NodeId) -> Option<&FollowerView> {
        self.followers.get(&node)
    }

    /// The ISR the high watermark waits for: the committed one and any
    /// member being added.
    fn maximal_isr(&self) -> BTreeSet<NodeId> {
        let mut set = self.isr.clone();
        if let Some((p, _)) = &self.pending {
            set.extend(p.isr.iter().copied());
        }
        set
    }

    /// Moves the high watermark to the smallest log end over the maximal
    /// ISR, never back. Returns whether it moved.
    pub fn update_high_watermark(&mut self, log_end: i64) -> bool {
        let mut candidate = log_end;
        for member in self.maximal_isr() {
            if member == self.node {
                continue;
            }
            let end = self.followers.get(&member).map_or(-1, |f| f.log_end);
            candidate = candidate.min(end);
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            true
        } else {
            false
        }
    }

    /// A follower fetched from `fetch_offset` (its log end) while the
    /// leader's log ended at `log_end`. Returns whether the high watermark
    /// moved. Fetches from a node that is no replica are ignored.
    pub fn on_fetch(
        &mut self,
        follower: NodeId,
        fetch_offset: i64,
        log_end: i64,
        now_ms: u64,
    ) -> bool {
        let Some(f) = self.followers.get_mut(&follower) else {
            return false;
        };
        if fetch_offset >= log_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= f.leader_end_at_last_fetch {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end = fetch_offset;
        f.leader_end_at_last_fetch = log_end;
        f.last_fetch_ms = now_ms;
        f.fetched_since_check = true;
        self.update_high_watermark(log_end)
    }

    /// A follower's fetch gave its log start.
    pub fn on_follower_log_start(&mut self, follower: NodeId, log_start: i64) {
        if let Some(f) = self.followers.get_mut(&follower) {
            f.log_start = log_start;
        }
    }

    /// Kafka's low watermark on a leader: the smallest log start over
    /// `own_start` and the in-sync followers' (-1 while one is not known):
    /// what DeleteRecords waits for.
    pub fn low_watermark(&self, own_start: i64) -> i64 {
        self.isr
            .iter()
            .filter(|&&n| n != self.node)
            .map(|n| self.followers.get(n).map_or(-1, |f| f.log_start))
            .fold(own_start, i64::min)
    }

    /// The ISR change to propose now: followers lagging more than
    /// replica.lag.time.max.ms leave, caught-up ones (past the high
    /// watermark and this epoch's start) that fetched since the last look
    /// join. While one is pending, nothing; once unanswered for
    /// `alter_retry_ms` it counts as refused (a controller that refuses
    /// says nothing: only the image tells) and the change is computed
    /// afresh.
    pub fn isr_change(&mut self, now_ms: u64) -> Option<AlterIsr> {
        if let Some((_, sent)) = &self.pending {
            if now_ms.saturating_sub(*sent) < self.config.alter_retry_ms {
                return None;
            }
            self.pending = None;
        }
        let mut next = self.isr.clone();
        next.insert(self.node);
        for (&id, f) in &mut self.followers {
            let lagging =
                now_ms.saturating_sub(f.last_caught_up_ms) > self.config.replica_lag_max_ms;
            let caught_up = f.log_end >= self.high_watermark && f.log_end >= self.epoch_start;
            let fetched = std::mem::take(&mut f.fetched_since_check);
            if self.isr.contains(&id) && lagging {
                next.remove(&id);
            } else if !self.isr.contains(&id) && caught_up && !lagging && fetched {
                next.insert(id);
            }
        }
        if next == self.isr {
            return None;
        }
        let change = AlterIsr {
            leader: self.node,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            isr: next,
        };
        self.pending = Some((change.clone(), now_ms));
        Some(change)
    }

    /// The controller committed an ISR (from this leader's proposal or its
    /// own decision, such as removing a fenced broker) at
    /// `partition_epoch`; a stale one is ignored.
    pub fn on_isr_committed(&mut self, isr: &[NodeId], partition_epoch: i32, log_end: i64) {
        if partition_epoch < self.partition_epoch {
            return;
        }
        self.isr = isr.iter().copied().collect();
        self.partition_epoch = partition_epoch;
        self.pending = None;
        self.update_high_watermark(log_end);
    }

    /// The controller refused the pending change (it may be proposed again).
    pub fn on_isr_refused(&mut self) {
        self.pending = None;
    }

    /// Whether an acks=all produce may be appended now.
    pub fn check_acks_all(&self) -> Result<(), AcksRefused> {
        if self.isr.len() < self.config.min_isr {
            return Err(AcksRefused::NotEnoughReplicas);
        }
        Ok(())
    }

    /// An acks=all produce whose records end at `end` (the offset after its
    /// last): `None` while not replicated, then its answer.
    pub fn acks_all_done(&self, end: i64) -> Option<Result<(), AcksRefused>> {
        if self.high_watermark < end {
            return None;
        }
        Some(if self.isr.len() < self.config.min_isr {
            Err(AcksRefused::NotEnoughReplicasAfterAppend)
        } else {
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: LeaderConfig = LeaderConfig {
        min_isr: 2,
        replica_lag_max_ms: 30_000,
        alter_retry_ms: 5_000,
    };

    fn leader() -> Leader {
        // Node 1 leads epoch 5 of replicas 1, 2, 3, all in sync, log end 10.
        Leader::new(1, 5, 7, &[1, 2, 3], &[1, 2, 3], 10, 8, CONFIG, 0)
    }

    #[test]
    fn the_low_watermark_is_the_smallest_log_start_over_the_isr() {
        let mut l = leader();
        assert_eq!(l.low_watermark(5), -1, "followers' starts not known");
        l.on_follower_log_start(2, 5);
        l.on_follower_log_start(3, 3);
        l.on_follower_log_start(9, 0);
        assert_eq!(l.low_watermark(5), 3);
        l.on_follower_log_start(3, 7);
        assert_eq!(l.low_watermark(5), 5);
        // Out of the ISR, a follower no longer holds it back.
        l.on_follower_log_start(3, 1);
        l.on_isr_committed(&[1, 2], 8, 10);
        assert_eq!(l.low_watermark(6), 5);
    }

    #[test]
    fn the_high_watermark_is_the_smallest_log_end_over_the_isr() {
        let mut l = leader();
        assert_eq!(l.high_watermark(), 8);
        // Unknown log ends hold it.
        assert!(!l.on_fetch(2, 10, 10, 1));
        assert_eq!(l.high_watermark(), 8);
        assert!(l.on_fetch(3, 9, 10, 2));
        assert_eq!(l.high_watermark(), 9);
        assert!(l.on_fetch(3, 10, 10, 3));
        assert_eq!(l.high_watermark(), 10);
        // Never back, even if a follower reports less (after truncating).
        assert!(!l.on_fetch(3, 4, 12, 4));
        assert_eq!(l.high_watermark(), 10);
        assert_eq!(l.acks_all_done(10), Some(Ok(())));
        assert_eq!(l.acks_all_done(11), None);
    }

    #[test]
    fn a_lagging_follower_leaves_only_when_the_controller_commits_it() {
        let mut l = leader();
        l.on_fetch(2, 10, 10, 1_000);
        l.on_fetch(3, 10, 10, 1_000);
        // Node 3 stops fetching; node 2 keeps up with a growing log.
        l.on_fetch(2, 20, 20, 40_000);
        let change = l.isr_change(40_000).expect("node 3 lags");
        assert_eq!(change.isr, BTreeSet::from([1, 2]));
        assert_eq!((change.leader_epoch, change.partition_epoch), (5, 7));
        // Pending: node 3 still counts, so the high watermark waits; the
        // same change is proposed again if unanswered.
        assert!(l.isr_change(40_001).is_none());
        // Unanswered past alter_retry_ms: computed afresh (the same here).
        assert_eq!(l.isr_change(45_000), Some(change));
        assert!(!l.update_high_watermark(20));
        assert_eq!(l.high_watermark(), 10);
        l.on_isr_committed(&[1, 2], 8, 20);
        assert_eq!(l.high_watermark(), 20);
        assert_eq!(l.check_acks_all(), Ok(()));
        // Back and caught up: proposed to join, counted at once.
        l.on_fetch(3, 15, 22, 41_000);
        assert!(l.isr_change(41_000).is_none(), "not caught up yet");
        l.on_fetch(3, 22, 22, 41_100);
        let change = l.isr_change(41_100).expect("node 3 caught up");
        assert_eq!(change.isr, BTreeSet::from([1, 2, 3]));
        l.on_isr_refused();
        assert!(l.pending().is_none());
    }

    #[test]
    fn acks_all_needs_min_insync_replicas() {
        let mut l = Leader::new(1, 0, 0, &[1, 2, 3], &[1], 0, 0, CONFIG, 0);
        assert_eq!(l.check_acks_all(), Err(AcksRefused::NotEnoughReplicas));
        l.on_isr_committed(&[1, 2], 1, 0);
        assert_eq!(l.check_acks_all(), Ok(()));
        l.on_fetch(2, 3, 3, 10);
        l.on_isr_committed(&[1], 2, 3);
        assert_eq!(
            l.acks_all_done(3),
            Some(Err(AcksRefused::NotEnoughReplicasAfterAppend))
        );
    }
}
