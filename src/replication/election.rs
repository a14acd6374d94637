//! The controller's side of one partition (Kafka's `PartitionRegistration`
//! and its election rules): replicas, ISR, leader, leader epoch and
//! partition epoch, changed by broker fencing and unfencing and by the
//! leader's AlterPartition requests. Every change bumps the partition
//! epoch; a change of leader also bumps the leader epoch.

use serde::{Deserialize, Serialize};

use super::leader::AlterIsr;
use super::{NodeId, NO_LEADER};

/// A partition as the metadata log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// In preference order: the first is the preferred leader.
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub leader: NodeId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// Why the controller refused an AlterPartition (Kafka's error names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterRefused {
    /// The request names an older (or newer) leader epoch, or a node that
    /// does not lead.
    FencedLeaderEpoch,
    /// The request was computed from another partition epoch.
    InvalidUpdateVersion,
    /// It adds a replica that is fenced or not a replica; or it drops the
    /// leader.
    IneligibleReplica,
}

impl PartitionState {
    /// A new partition: the first replica leads, all are in sync.
    pub fn new(replicas: Vec<NodeId>) -> Self {
        PartitionState {
            leader: replicas.first().copied().unwrap_or(NO_LEADER),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    /// Elects a leader: the first replica in preference order that is in
    /// the ISR and alive; with `unclean`, failing that, the first alive
    /// replica (which becomes the whole ISR). None: no leader. Bumps the
    /// epochs when the leader changes.
    fn elect(&mut self, alive: &dyn Fn(NodeId) -> bool, unclean: bool) {
        let clean = self
            .replicas
            .iter()
            .copied()
            .find(|&r| self.isr.contains(&r) && alive(r));
        let next = match clean {
            Some(r) => r,
            None if unclean => match self.replicas.iter().copied().find(|&r| alive(r)) {
                Some(r) => {
                    self.isr = vec![r];
                    r
                }
                None => NO_LEADER,
            },
            None => NO_LEADER,
        };
        if next != self.leader {
            self.leader = next;
            self.leader_epoch += 1;
        }
        self.partition_epoch += 1;
    }

    /// Broker `b` was fenced (its session expired, or it shut down or
    /// restarted): it leaves the ISR unless it is the last member (whose
    /// data must not be forgotten), and if it led, another is elected.
    /// Returns whether the partition changed.
    pub fn on_fenced(&mut self, b: NodeId, alive: &dyn Fn(NodeId) -> bool, unclean: bool) -> bool {
        if !self.replicas.contains(&b) {
            return false;
        }
        let mut changed = false;
        if self.isr.contains(&b) && self.isr.len() > 1 {
            self.isr.retain(|&r| r != b);
            changed = true;
        }
        if self.leader == b {
            self.elect(alive, unclean);
            return true;
        }
        if changed {
            self.partition_epoch += 1;
        }
        changed
    }

    /// Broker `b` is back: a partition without a leader elects one (it, if
    /// it is in the ISR). Returns whether the partition changed.
    pub fn on_unfenced(
        &mut self,
        b: NodeId,
        alive: &dyn Fn(NodeId) -> bool,
        unclean: bool,
    ) -> bool {
        if self.leader != NO_LEADER || !self.replicas.contains(&b) {
            return false;
        }
        let before = self.clone();
        self.elect(alive, unclean);
        if self.leader == NO_LEADER {
            *self = before;
            return false;
        }
        true
    }

    /// The leader's AlterPartition: applied if it comes from the current
    /// leader at the current epochs, keeps the leader, and adds only alive
    /// replicas.
    pub fn alter_isr(
        &mut self,
        request: &AlterIsr,
        alive: &dyn Fn(NodeId) -> bool,
    ) -> Result<(), AlterRefused> {
        if request.leader != self.leader || request.leader_epoch != self.leader_epoch {
            return Err(AlterRefused::FencedLeaderEpoch);
        }
        if request.partition_epoch != self.partition_epoch {
            return Err(AlterRefused::InvalidUpdateVersion);
        }
        if !request.isr.contains(&self.leader) {
            return Err(AlterRefused::IneligibleReplica);
        }
        for &r in &request.isr {
            let added = !self.isr.contains(&r);
            if !self.replicas.contains(&r) || (added && !alive(r)) {
                return Err(AlterRefused::IneligibleReplica);
            }
        }
        // In preference order, as the replicas are listed.
        self.isr = self
            .replicas
            .iter()
            .copied()
            .filter(|r| request.isr.contains(r))
            .collect();
        self.partition_epoch += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn a_fenced_leader_is_replaced_from_the_isr_in_preference_order() {
        let mut p = PartitionState::new(vec![1, 2, 3]);
        let alive = |n: NodeId| n != 1;
        assert!(p.on_fenced(1, &alive, false));
        assert_eq!(
            (p.leader, p.leader_epoch, p.isr.clone()),
            (2, 1, vec![2, 3])
        );
        // A follower fenced: out of the ISR, same leader epoch.
        let alive = |n: NodeId| n == 2;
        assert!(p.on_fenced(3, &alive, false));
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (2, 1, vec![2]));
        // The last member stays in the ISR: the partition goes offline
        // rather than forget what only it has.
        let alive = |_: NodeId| false;
        assert!(p.on_fenced(2, &alive, false));
        assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![2]));
        // Node 1 back: not in the ISR, so no clean election.
        let alive = |n: NodeId| n == 1;
        assert!(!p.on_unfenced(1, &alive, false));
        assert_eq!(p.leader, NO_LEADER);
        // Node 2 back: it leads again, in a new epoch.
        let epoch = p.leader_epoch;
        let alive = |n: NodeId| n <= 2;
        assert!(p.on_unfenced(2, &alive, false));
        assert_eq!((p.leader, p.leader_epoch), (2, epoch + 1));
    }

    #[test]
    fn unclean_election_takes_any_live_replica() {
        let mut p = PartitionState::new(vec![1, 2]);
        p.isr = vec![1];
        let alive = |n: NodeId| n == 2;
        p.on_fenced(1, &alive, true);
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2]));
    }

    #[test]
    fn alter_partition_checks_epochs_and_eligibility() {
        let mut p = PartitionState::new(vec![1, 2, 3]);
        let alive = |n: NodeId| n != 3;
        let req = |isr: &[NodeId], le: i32, pe: i32| AlterIsr {
            leader: 1,
            leader_epoch: le,
            partition_epoch: pe,
            isr: isr.iter().copied().collect::<BTreeSet<_>>(),
        };
        assert_eq!(p.alter_isr(&req(&[1, 2], 0, 0), &alive), Ok(()));
        assert_eq!(p.isr, vec![1, 2]);
        assert_eq!(
            p.alter_isr(&req(&[1], 0, 0), &alive),
            Err(AlterRefused::InvalidUpdateVersion)
        );
        assert_eq!(
            p.alter_isr(&req(&[1], 1, 1), &alive),
            Err(AlterRefused::FencedLeaderEpoch)
        );
        assert_eq!(
            p.alter_isr(&req(&[1, 2, 3], 0, 1), &alive),
            Err(AlterRefused::IneligibleReplica)
        );
        assert_eq!(
            p.alter_isr(&req(&[2], 0, 1), &alive),
            Err(AlterRefused::IneligibleReplica)
        );
    }
}
