//! A shard's memory budgets, shared fairly by its connections: request
//! bytes read and not yet answered (`queued.max.request.bytes`) and
//! response bytes built and not yet written
//! (`shardlog.response.bytes.max`).
//!
//! Each connection draws on a [`Budget`] through its own [`Account`]. Units
//! are granted in request order as they fit, with two rules besides:
//!
//! - An account may be capped (a connection's own limit); a request past
//!   its cap waits for the account's own units to come back.
//! - While other connections wait, no connection grows past its fair share
//!   (the capacity divided by the connections holding or waiting); one that
//!   holds nothing may always take what it needs, so a frame larger than
//!   the share still gets through once space frees up. Waiters held back by
//!   this rule do not block the ones behind them; a waiter that is only
//!   short of space does, so a large request is not starved by small ones.
//!
//! A [`Hold`] gives its units back when dropped. Everything here lives on
//! one shard: plain `Cell`/`RefCell`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

pub struct Budget {
    capacity: u64,
    used: Cell<u64>,
    /// Accounts holding units, plus accounts holding none that wait: the
    /// connections the capacity is shared among.
    contenders: Cell<usize>,
    queue: RefCell<VecDeque<Rc<Waiter>>>,
}

struct AccountState {
    held: Cell<u64>,
    /// Waiters of this account in the queue.
    waiting: Cell<usize>,
    cap: u64,
}

impl AccountState {
    fn contends(&self) -> bool {
        self.held.get() > 0 || self.waiting.get() > 0
    }
}

struct Waiter {
    account: Rc<AccountState>,
    units: u64,
    granted: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Budget {
    pub fn new(capacity: u64) -> Rc<Self> {
        Rc::new(Budget {
            capacity: capacity.max(1),
            used: Cell::new(0),
            contenders: Cell::new(0),
            queue: RefCell::new(VecDeque::new()),
        })
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Units handed out (may exceed the capacity by what
    /// [`Hold::resize_now`] took without waiting).
    pub fn used(&self) -> u64 {
        self.used.get()
    }

    /// A connection's account, holding at most `cap` units at once.
    pub fn account(self: &Rc<Self>, cap: u64) -> Account {
        Account {
            budget: self.clone(),
            state: Rc::new(AccountState {
                held: Cell::new(0),
                waiting: Cell::new(0),
                cap: cap.max(1),
            }),
        }
    }

    /// Runs `f` on an account's counters, keeping `contenders` in step.
    fn update(&self, account: &AccountState, f: impl FnOnce(&AccountState)) {
        let before = account.contends();
        f(account);
        match (before, account.contends()) {
            (false, true) => self.contenders.set(self.contenders.get() + 1),
            (true, false) => self.contenders.set(self.contenders.get() - 1),
            _ => {}
        }
    }

    fn take(&self, account: &AccountState, units: u64) {
        self.used.set(self.used.get() + units);
        self.update(account, |a| a.held.set(a.held.get() + units));
    }

    fn give_back(&self, account: &AccountState, units: u64) {
        if units == 0 {
            return;
        }
        self.used.set(self.used.get() - units);
        self.update(account, |a| a.held.set(a.held.get() - units));
        self.grant();
    }

    fn fair_share(&self) -> u64 {
        self.capacity / self.contenders.get().max(1) as u64
    }

    /// Whether `account` may take `units` now as far as caps and fairness
    /// go (space aside).
    fn allowed(&self, account: &AccountState, units: u64, others_wait: bool) -> bool {
        let held = account.held.get();
        held + units <= account.cap
            && (held == 0 || !others_wait || held + units <= self.fair_share())
    }

    fn fits(&self, units: u64) -> bool {
        self.used.get() + units <= self.capacity
    }

    /// Grants queued waiters in order: those held back by their cap or
    /// fair share are passed over; the first that is only short of space
    /// stops the scan.
    fn grant(&self) {
        let mut granted = Vec::new();
        {
            let mut queue = self.queue.borrow_mut();
            let mut i = 0;
            while i < queue.len() {
                let w = queue[i].clone();
                // Some queued waiter is another account's.
                let others_wait = queue.len() > w.account.waiting.get();
                if !self.allowed(&w.account, w.units, others_wait) {
                    i += 1;
                    continue;
                }
                if !self.fits(w.units) {
                    break;
                }
                queue.remove(i);
                self.update(&w.account, |a| a.waiting.set(a.waiting.get() - 1));
                self.take(&w.account, w.units);
                w.granted.set(true);
                granted.push(w);
            }
        }
        for w in granted {
            if let Some(waker) = w.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}

/// One connection's share of a [`Budget`].
pub struct Account {
    budget: Rc<Budget>,
    state: Rc<AccountState>,
}

impl Account {
    /// Units this account holds.
    pub fn held(&self) -> u64 {
        self.state.held.get()
    }

    /// The account's cap.
    pub fn cap(&self) -> u64 {
        self.state.cap
    }

    /// A hold of nothing, to grow with [`Hold::absorb`] or
    /// [`Hold::resize_now`].
    pub fn empty(&self) -> Hold {
        Hold {
            budget: self.budget.clone(),
            account: self.state.clone(),
            units: 0,
        }
    }

    /// Waits for `units` (clamped to the budget's capacity and the
    /// account's cap).
    pub fn acquire(&self, units: u64) -> Acquire {
        let units = units.min(self.budget.capacity).min(self.state.cap);
        let budget = &self.budget;
        let queue_empty = budget.queue.borrow().is_empty();
        let waiter = Rc::new(Waiter {
            account: self.state.clone(),
            units,
            granted: Cell::new(false),
            waker: RefCell::new(None),
        });
        if queue_empty && budget.allowed(&self.state, units, false) && budget.fits(units) {
            budget.take(&self.state, units);
            waiter.granted.set(true);
        } else {
            budget.update(&self.state, |a| a.waiting.set(a.waiting.get() + 1));
            budget.queue.borrow_mut().push_back(waiter.clone());
            // Entering the queue can change the fair share of others.
            budget.grant();
        }
        Acquire {
            budget: budget.clone(),
            waiter,
            done: false,
        }
    }
}

/// A pending [`Account::acquire`]. Dropping it leaves the queue (or gives
/// back units granted but never collected).
pub struct Acquire {
    budget: Rc<Budget>,
    waiter: Rc<Waiter>,
    done: bool,
}

impl Future for Acquire {
    type Output = Hold;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Hold> {
        if self.waiter.granted.get() {
            self.done = true;
            return Poll::Ready(Hold {
                budget: self.budget.clone(),
                account: self.waiter.account.clone(),
                units: self.waiter.units,
            });
        }
        *self.waiter.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.waiter.granted.get() {
            self.budget
                .give_back(&self.waiter.account, self.waiter.units);
            return;
        }
        let removed = {
            let mut queue = self.budget.queue.borrow_mut();
            let before = queue.len();
            queue.retain(|w| !Rc::ptr_eq(w, &self.waiter));
            before != queue.len()
        };
        if removed {
            self.budget
                .update(&self.waiter.account, |a| a.waiting.set(a.waiting.get() - 1));
            // Leaving can let others through (fair shares grow).
            self.budget.grant();
        }
    }
}

/// Units held from a budget; given back on drop.
pub struct Hold {
    budget: Rc<Budget>,
    account: Rc<AccountState>,
    units: u64,
}

impl Hold {
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Adds another hold of the same account to this one.
    pub fn absorb(&mut self, mut other: Hold) {
        debug_assert!(Rc::ptr_eq(&self.account, &other.account));
        self.units += std::mem::take(&mut other.units);
    }

    /// Splits `units` off into a hold of their own.
    pub fn split_off(&mut self, units: u64) -> Hold {
        let units = units.min(self.units);
        self.units -= units;
        Hold {
            budget: self.budget.clone(),
            account: self.account.clone(),
            units,
        }
    }

    /// Makes this hold `units` at once: gives back what is beyond, or takes
    /// what is missing without waiting (past the capacity if need be; for
    /// the bounded overshoot of a response that must hold one whole batch).
    pub fn resize_now(&mut self, units: u64) {
        if units > self.units {
            self.budget.take(&self.account, units - self.units);
        } else {
            self.budget.give_back(&self.account, self.units - units);
        }
        self.units = units;
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.budget.give_back(&self.account, self.units);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    // Proves units are granted in order as they fit, and a hold gives its
    // units back on drop.
    #[test]
    fn grants_in_order_and_returns_on_drop() {
        let budget = Budget::new(100);
        let a = budget.account(100);
        let b = budget.account(100);
        let h1 = block_on(a.acquire(60));
        let mut w = b.acquire(60);
        assert!(block_on(poll_once(&mut w)).is_none());
        drop(h1);
        let h2 = block_on(poll_once(&mut w)).expect("granted after the release");
        assert_eq!((h2.units(), budget.used()), (60, 60));
        drop(h2);
        assert_eq!(budget.used(), 0);
    }

    // Proves a connection cannot grow past its fair share while another
    // waits, but one holding nothing gets through, and the waiter held back
    // by fairness does not block others.
    #[test]
    fn fair_share_while_others_wait() {
        let budget = Budget::new(100);
        let greedy = budget.account(1000);
        let other = budget.account(1000);
        let _g1 = block_on(greedy.acquire(40));
        // Alone, greedy may grow past half.
        let _g2 = block_on(greedy.acquire(30));
        let mut o = other.acquire(40);
        assert!(block_on(poll_once(&mut o)).is_none(), "only 30 left");
        // Greedy asks for more while other waits: held back (fair share 50).
        let mut g3 = greedy.acquire(10);
        assert!(block_on(poll_once(&mut g3)).is_none());
        drop(_g2);
        // 60 free: other (holding nothing) is granted first.
        let o = block_on(poll_once(&mut o)).expect("other granted");
        assert_eq!(o.units(), 40);
        // Greedy holds 40; +10 = 50 is within the fair share of two.
        assert!(block_on(poll_once(&mut g3)).is_some());
    }

    // Proves an account's cap holds its requests back until its own units
    // return, and requests are clamped to the cap.
    #[test]
    fn account_cap() {
        let budget = Budget::new(1000);
        let a = budget.account(100);
        let h = block_on(a.acquire(500));
        assert_eq!(h.units(), 100, "clamped to the cap");
        let mut next = a.acquire(10);
        assert!(block_on(poll_once(&mut next)).is_none());
        drop(h);
        assert!(block_on(poll_once(&mut next)).is_some());
    }

    // Proves abandoned waiters leave the queue, and splitting, absorbing and
    // resizing holds keep the counts exact.
    #[test]
    fn abandon_split_resize() {
        let budget = Budget::new(100);
        let a = budget.account(100);
        let b = budget.account(100);
        let mut h = block_on(a.acquire(100));
        let w = b.acquire(10);
        drop(w);
        let part = h.split_off(30);
        assert_eq!((h.units(), part.units(), budget.used()), (70, 30, 100));
        drop(part);
        assert_eq!(budget.used(), 70);
        h.resize_now(120);
        assert_eq!(budget.used(), 120, "resize may overshoot the capacity");
        let mut rest = a.empty();
        rest.absorb(h);
        rest.resize_now(5);
        assert_eq!((budget.used(), a.held()), (5, 5));
        drop(rest);
        assert_eq!((budget.used(), a.held()), (0, 0));
    }
}
