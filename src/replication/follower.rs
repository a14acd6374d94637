//! A follower's truncation (KIP-101, KIP-279): before it fetches from a
//! new leader, a follower asks the leader where its own latest epoch ends
//! (OffsetForLeaderEpoch) and cuts its log there, so that it never keeps
//! records the leader does not have. Truncating to the high watermark
//! instead loses or diverges under two quick leader changes (KIP-101's two
//! scenarios); the epochs make it exact.

use super::epochs::EpochCache;
use super::UNDEFINED_EPOCH;

/// What the follower does with the leader's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Cut the log at `offset` (no record if it is the log end) and the
    /// epoch cache with it (`EpochCache::truncate_from_end`, which also
    /// drops an epoch starting there with no records: one this node led
    /// without writing; keeping it would ask about it forever); `done`:
    /// start fetching, else ask again with the new latest epoch (the
    /// leader's epoch was not one this follower has).
    To { offset: i64, done: bool },
    /// The leader knows no epoch at or below the one asked: it is behind
    /// (its metadata is older than this follower's); ask again later.
    Retry,
}

/// The follower's decision, given its epoch cache and log end, and the
/// leader's answer (`leader_epoch`, `leader_end`) to OffsetForLeaderEpoch
/// for the follower's latest epoch. A follower with an empty log has
/// nothing to cut.
pub fn truncation(
    own: &EpochCache,
    own_log_end: i64,
    leader_epoch: i32,
    leader_end: i64,
) -> Truncation {
    if own.latest().is_none() {
        return Truncation::To {
            offset: own_log_end,
            done: true,
        };
    }
    if leader_epoch == UNDEFINED_EPOCH || leader_end < 0 {
        return Truncation::Retry;
    }
    let (epoch, own_end) = own.end_offset_for(leader_epoch, own_log_end);
    if epoch == leader_epoch {
        // Both have this epoch: whatever follows the shorter of the two
        // ends is not on the leader.
        Truncation::To {
            offset: leader_end.min(own_end).min(own_log_end),
            done: true,
        }
    } else {
        // The follower never had the leader's epoch: cut back to where its
        // own epochs below it end and ask again.
        Truncation::To {
            offset: own_end.min(own_log_end).max(0),
            done: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> EpochCache {
        EpochCache::from_assignments(entries)
    }

    #[test]
    fn kip_101_scenarios() {
        // Scenario 1: the follower has more of epoch 1 than the leader kept
        // (the leader, elected at 5, cut nothing; the follower wrote to 7
        // in epoch 1 as the old leader): cut at 5.
        let follower = cache(&[(1, 0)]);
        assert_eq!(
            truncation(&follower, 7, 1, 5),
            Truncation::To {
                offset: 5,
                done: true
            }
        );
        // The follower is behind in the same epoch: nothing to cut.
        assert_eq!(
            truncation(&follower, 3, 1, 5),
            Truncation::To {
                offset: 3,
                done: true
            }
        );
        // Scenario 2: the follower led epoch 2 briefly from offset 4 (not
        // replicated); the leader's answer for epoch 2 is its largest epoch
        // below it (1), ending at 4: cut back, then ask again with epoch 1.
        let follower = cache(&[(1, 0), (2, 4)]);
        let leader = cache(&[(1, 0), (3, 4)]);
        let (epoch, end) = leader.end_offset_for(follower.latest_epoch(), 9);
        assert_eq!((epoch, end), (1, 4));
        assert_eq!(
            truncation(&follower, 6, epoch, end),
            Truncation::To {
                offset: 4,
                done: true
            }
        );
    }

    #[test]
    fn an_empty_epoch_of_the_follower_is_dropped_and_it_asks_again() {
        // Found by the simulation (seed 821 of an early version): the
        // follower led epoch 3 from offset 1 without writing; the leader
        // has epochs 0, 2 (from 1), 8 (from 5).
        let leader = cache(&[(0, 0), (2, 1), (8, 5)]);
        let mut follower = cache(&[(0, 0), (3, 1)]);
        let (epoch, end) = leader.end_offset_for(follower.latest_epoch(), 15);
        assert_eq!((epoch, end), (2, 5));
        let Truncation::To { offset, done } = truncation(&follower, 1, epoch, end) else {
            panic!("a cut");
        };
        assert_eq!((offset, done), (1, false));
        follower.truncate_from_end(offset);
        // The next question is about epoch 0, which both have.
        assert_eq!(follower.latest_epoch(), 0);
        let (epoch, end) = leader.end_offset_for(0, 15);
        assert_eq!(
            truncation(&follower, 1, epoch, end),
            Truncation::To {
                offset: 1,
                done: true
            }
        );
    }

    #[test]
    fn an_epoch_the_follower_never_had_cuts_back_and_asks_again() {
        // The leader answers epoch 2 for the follower's 4; the follower has
        // 1 and 4 only: epoch 1 ends at 10 on the follower.
        let follower = cache(&[(1, 0), (4, 10)]);
        assert_eq!(
            truncation(&follower, 12, 2, 11),
            Truncation::To {
                offset: 10,
                done: false
            }
        );
        assert_eq!(
            truncation(&follower, 12, UNDEFINED_EPOCH, -1),
            Truncation::Retry
        );
        assert_eq!(
            truncation(&EpochCache::default(), 0, 3, 8),
            Truncation::To {
                offset: 0,
                done: true
            }
        );
    }
}
