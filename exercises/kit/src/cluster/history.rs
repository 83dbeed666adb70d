//! Histories of client operations, and a linearizability checker for them.
//!
//! A test records what each client asked and what it was told, with the times; the property is
//! then checked on the whole history rather than on one happy path. *Linearizable* means: there
//! is one order of the operations, consistent with real time (an operation that returned before
//! another was invoked comes first), in which every answer is what a single copy of the data
//! would have given. An operation that never returned (its reply lost, its client gave up) may
//! have taken effect at any point after its invocation, or not at all.
//!
//! The search is the classic one (Wing & Gong, with Lowe's memoisation of visited states, as in
//! Knossos and Porcupine), run key by key: operations on different keys never constrain each other.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::rc::Rc;
use std::time::Duration;

use super::NodeId;

/// One operation of a history.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded<Op, Ret> {
    pub client: NodeId,
    pub op: Op,
    pub invoked: Duration,
    /// When it returned and with what; `None` if it never did.
    pub returned: Option<(Duration, Ret)>,
}

/// A shared, append-only history (clone it into each client).
pub struct History<Op, Ret>(Rc<RefCell<Vec<Recorded<Op, Ret>>>>);

impl<Op, Ret> Clone for History<Op, Ret> {
    fn clone(&self) -> Self {
        History(Rc::clone(&self.0))
    }
}

impl<Op, Ret> Default for History<Op, Ret> {
    fn default() -> Self {
        History(Rc::new(RefCell::new(Vec::new())))
    }
}

impl<Op: Clone, Ret: Clone> History<Op, Ret> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `client` invoked `op` at `at`; returns the handle to complete it with.
    pub fn invoke(&self, client: NodeId, op: Op, at: Duration) -> usize {
        let mut entries = self.0.borrow_mut();
        entries.push(Recorded {
            client,
            op,
            invoked: at,
            returned: None,
        });
        entries.len() - 1
    }

    /// Records that operation `handle` returned `ret` at `at`.
    pub fn complete(&self, handle: usize, ret: Ret, at: Duration) {
        self.0.borrow_mut()[handle].returned = Some((at, ret));
    }

    /// Everything recorded so far, in invocation order.
    pub fn entries(&self) -> Vec<Recorded<Op, Ret>> {
        self.0.borrow().clone()
    }
}

/// A sequential specification: what a single copy of the data answers.
pub trait Model {
    type Op: Clone + Debug;
    type Ret: Clone + Debug;
    type State: Clone + Eq + Hash + Debug;
    fn init(&self) -> Self::State;
    /// The state after `op`, if answering `ret` is possible from `state`; `ret` is `None` for an
    /// operation that never returned (any answer goes; only its effect matters).
    fn step(
        &self,
        state: &Self::State,
        op: &Self::Op,
        ret: Option<&Self::Ret>,
    ) -> Option<Self::State>;
}

/// An operation on a key-value store with integer keys and values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOp {
    Get(u64),
    Put(u64, u64),
}

impl KvOp {
    pub fn key(&self) -> u64 {
        match self {
            KvOp::Get(k) | KvOp::Put(k, _) => *k,
        }
    }
}

/// What a key-value store answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvRet {
    /// A get's answer: the value, or `None` if the key was never written.
    Value(Option<u64>),
    /// A put was acknowledged.
    Ok,
}

/// One register per key (checked one key at a time).
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl Model for KvModel {
    type Op = KvOp;
    type Ret = KvRet;
    type State = Option<u64>;

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(&self, state: &Option<u64>, op: &KvOp, ret: Option<&KvRet>) -> Option<Option<u64>> {
        match (op, ret) {
            (KvOp::Get(_), None) => Some(*state),
            (KvOp::Get(_), Some(KvRet::Value(v))) => (v == state).then_some(*state),
            (KvOp::Put(_, v), None | Some(KvRet::Ok)) => Some(Some(*v)),
            _ => None,
        }
    }
}

impl History<KvOp, KvRet> {
    /// Checks that the key-value history is linearizable; the error shows the operations on the
    /// first key that is not, in invocation order.
    pub fn check_linearizable(&self) -> Result<(), String> {
        let mut by_key: BTreeMap<u64, Vec<Recorded<KvOp, KvRet>>> = BTreeMap::new();
        for entry in self.entries() {
            by_key.entry(entry.op.key()).or_default().push(entry);
        }
        for (key, ops) in by_key {
            if !linearizable(&KvModel, &ops) {
                return Err(format!(
                    "the operations on key {key} are not linearizable: no single order of them, \
                     consistent with real time, gives these answers:\n{}",
                    render(&ops)
                ));
            }
        }
        Ok(())
    }
}

/// Whether `ops` (in any order) is a linearizable history of `model`.
pub fn linearizable<M: Model>(model: &M, ops: &[Recorded<M::Op, M::Ret>]) -> bool {
    let ops: Vec<&Recorded<M::Op, M::Ret>> = ops.iter().collect();
    let mut search = Search {
        model,
        ops: &ops,
        done: vec![false; ops.len()],
        seen: HashSet::new(),
    };
    search.from(model.init())
}

struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [&'a Recorded<M::Op, M::Ret>],
    done: Vec<bool>,
    seen: HashSet<(Vec<bool>, M::State)>,
}

impl<M: Model> Search<'_, M> {
    fn from(&mut self, state: M::State) -> bool {
        let pending = |i: usize| !self.done[i];
        // Every returned operation placed: the rest never returned and may never have happened.
        let Some(horizon) = (0..self.ops.len())
            .filter(|&i| pending(i))
            .filter_map(|i| self.ops[i].returned.as_ref().map(|(t, _)| *t))
            .min()
        else {
            return true;
        };
        // The next operation in the order must have been invoked before every other pending one
        // returned (otherwise that one comes first in real time).
        for i in 0..self.ops.len() {
            if self.done[i] || self.ops[i].invoked > horizon {
                continue;
            }
            let ret = self.ops[i].returned.as_ref().map(|(_, r)| r);
            let Some(next) = self.model.step(&state, &self.ops[i].op, ret) else {
                continue;
            };
            self.done[i] = true;
            if self.seen.insert((self.done.clone(), next.clone())) && self.from(next) {
                return true;
            }
            self.done[i] = false;
        }
        false
    }
}

fn render<Op: Debug, Ret: Debug>(ops: &[Recorded<Op, Ret>]) -> String {
    let mut ops: Vec<_> = ops.iter().collect();
    ops.sort_by_key(|r| r.invoked);
    ops.iter()
        .map(|r| match &r.returned {
            Some((t, ret)) => format!(
                "  client {} {:?}: invoked at {:?}, returned {:?} at {:?}",
                r.client, r.op, r.invoked, ret, t
            ),
            None => format!(
                "  client {} {:?}: invoked at {:?}, never returned",
                r.client, r.op, r.invoked
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn op(history: &History<KvOp, KvRet>, op: KvOp, invoked: u64, returned: Option<(u64, KvRet)>) {
        let h = history.invoke(0, op, ms(invoked));
        if let Some((t, ret)) = returned {
            history.complete(h, ret, ms(t));
        }
    }

    #[test]
    fn a_read_after_an_acknowledged_write_must_see_it() {
        let h = History::new();
        op(&h, KvOp::Put(1, 5), 0, Some((10, KvRet::Ok)));
        op(&h, KvOp::Get(1), 20, Some((30, KvRet::Value(None))));
        assert!(h.check_linearizable().is_err());

        let h = History::new();
        op(&h, KvOp::Put(1, 5), 0, Some((10, KvRet::Ok)));
        op(&h, KvOp::Get(1), 20, Some((30, KvRet::Value(Some(5)))));
        assert!(h.check_linearizable().is_ok());
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let h = History::new();
        op(&h, KvOp::Put(1, 5), 0, Some((50, KvRet::Ok)));
        op(&h, KvOp::Get(1), 10, Some((20, KvRet::Value(None))));
        op(&h, KvOp::Get(1), 30, Some((40, KvRet::Value(Some(5)))));
        assert!(h.check_linearizable().is_ok());
        // ...but once a read saw the new value, a later read may not go back.
        op(&h, KvOp::Get(1), 41, Some((45, KvRet::Value(None))));
        assert!(h.check_linearizable().is_err());
    }

    #[test]
    fn a_write_that_never_returned_may_or_may_not_have_happened() {
        let h = History::new();
        op(&h, KvOp::Put(1, 7), 0, None);
        op(&h, KvOp::Get(1), 10, Some((20, KvRet::Value(None))));
        op(&h, KvOp::Get(1), 30, Some((40, KvRet::Value(Some(7)))));
        assert!(h.check_linearizable().is_ok());
        let h2 = History::new();
        op(&h2, KvOp::Put(1, 7), 0, None);
        op(&h2, KvOp::Get(1), 10, Some((20, KvRet::Value(Some(8)))));
        assert!(h2.check_linearizable().is_err(), "8 was never written");
    }

    #[test]
    fn keys_are_checked_independently_and_the_error_names_the_key() {
        let h = History::new();
        op(&h, KvOp::Put(1, 1), 0, Some((10, KvRet::Ok)));
        op(&h, KvOp::Put(2, 2), 0, Some((10, KvRet::Ok)));
        op(&h, KvOp::Get(2), 20, Some((30, KvRet::Value(Some(1)))));
        let err = h.check_linearizable().unwrap_err();
        assert!(err.contains("key 2"), "{err}");
    }
}
