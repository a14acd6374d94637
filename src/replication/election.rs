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

/// Kafka's election types (ElectLeaders' `election_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionKind {
    /// Move leadership to the preferred (first) replica if it is live and
    /// in sync (type 0).
    Preferred,
    /// Give a partition without a leader one, from outside the ISR if
    /// need be (type 1).
    Unclean,
}

/// Why ElectLeaders elected nobody for a partition (Kafka's errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectRefused {
    /// The preferred replica leads already; or (unclean) a leader exists.
    NotNeeded,
    /// The preferred replica is fenced or out of the ISR.
    PreferredNotAvailable,
    /// (unclean) No replica is live.
    EligibleNotAvailable,
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

    /// An ElectLeaders election of `kind` (Kafka's controller rules);
    /// bumps the epochs when a leader is elected.
    pub fn elect_leader(
        &mut self,
        kind: ElectionKind,
        alive: &dyn Fn(NodeId) -> bool,
    ) -> Result<(), ElectRefused> {
        match kind {
            ElectionKind::Preferred => {
                let Some(&preferred) = self.replicas.first() else {
                    return Err(ElectRefused::PreferredNotAvailable);
                };
                if self.leader == preferred {
                    return Err(ElectRefused::NotNeeded);
                }
                if !self.preferred_eligible(alive) {
                    return Err(ElectRefused::PreferredNotAvailable);
                }
                self.leader = preferred;
                self.leader_epoch += 1;
                self.partition_epoch += 1;
                Ok(())
            }
            ElectionKind::Unclean => {
                if self.leader != NO_LEADER {
                    return Err(ElectRefused::NotNeeded);
                }
                let before = self.clone();
                self.elect(alive, true);
                if self.leader == NO_LEADER {
                    *self = before;
                    return Err(ElectRefused::EligibleNotAvailable);
                }
                Ok(())
            }
        }
    }

    /// Whether the preferred replica could lead: live and in sync.
    fn preferred_eligible(&self, alive: &dyn Fn(NodeId) -> bool) -> bool {
        self.replicas
            .first()
            .is_some_and(|&p| self.isr.contains(&p) && alive(p))
    }

    /// Led by another than the preferred replica while the preferred one
    /// could lead (what automatic leader rebalancing corrects).
    pub fn imbalanced(&self, alive: &dyn Fn(NodeId) -> bool) -> bool {
        self.replicas.first() != Some(&self.leader) && self.preferred_eligible(alive)
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
    fn elect_leaders_follows_kafkas_rules() {
        let mut p = PartitionState::new(vec![1, 2, 3]);
        let all = |_: NodeId| true;
        assert_eq!(
            p.elect_leader(ElectionKind::Preferred, &all),
            Err(ElectRefused::NotNeeded)
        );
        assert_eq!(
            p.elect_leader(ElectionKind::Unclean, &all),
            Err(ElectRefused::NotNeeded)
        );
        // Node 1 fenced: 2 leads; the preferred replica is not eligible
        // until it is back and in sync.
        let no1 = |n: NodeId| n != 1;
        p.on_fenced(1, &no1, false);
        assert!(!p.imbalanced(&no1));
        assert_eq!(
            p.elect_leader(ElectionKind::Preferred, &no1),
            Err(ElectRefused::PreferredNotAvailable)
        );
        p.on_unfenced(1, &all, false);
        assert_eq!(
            p.elect_leader(ElectionKind::Preferred, &all),
            Err(ElectRefused::PreferredNotAvailable)
        );
        p.isr = vec![1, 2, 3];
        assert!(p.imbalanced(&all));
        let epochs = (p.leader_epoch, p.partition_epoch);
        assert_eq!(p.elect_leader(ElectionKind::Preferred, &all), Ok(()));
        assert_eq!(
            (p.leader, p.leader_epoch, p.partition_epoch),
            (1, epochs.0 + 1, epochs.1 + 1)
        );
        assert!(!p.imbalanced(&all));
        // Unclean: only a partition without a leader, from any live
        // replica once the ISR has none.
        let none = |_: NodeId| false;
        p.on_fenced(2, &none, false);
        p.on_fenced(3, &none, false);
        p.on_fenced(1, &none, false);
        assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![1]));
        assert_eq!(
            p.elect_leader(ElectionKind::Unclean, &none),
            Err(ElectRefused::EligibleNotAvailable)
        );
        let only3 = |n: NodeId| n == 3;
        assert_eq!(p.elect_leader(ElectionKind::Unclean, &only3), Ok(()));
        assert_eq!((p.leader, p.isr.clone()), (3, vec![3]));
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
