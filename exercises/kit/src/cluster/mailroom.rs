//! Typed messages over turmoil's datagrams.
//!
//! turmoil carries bytes. Every host of a simulation lives in this one process and thread, so
//! instead of serialising each message the sender files it here and the datagram carries its
//! ticket; the receiver redeems the ticket. The network still decides everything that matters:
//! whether, when and in which order the datagram arrives. A ticket is redeemed at most once, so
//! a duplicated message is filed twice.

use std::cell::RefCell;
use std::collections::HashMap;

pub(crate) struct Mailroom<M> {
    letters: RefCell<HashMap<u64, (usize, M)>>,
    next_ticket: RefCell<u64>,
}

impl<M> Mailroom<M> {
    pub(crate) fn new() -> Self {
        Mailroom {
            letters: RefCell::new(HashMap::new()),
            next_ticket: RefCell::new(0),
        }
    }

    /// Files `msg` from `from` and returns the ticket to put on the wire.
    pub(crate) fn file(&self, from: usize, msg: M) -> [u8; 8] {
        let mut next = self.next_ticket.borrow_mut();
        let ticket = *next;
        *next += 1;
        self.letters.borrow_mut().insert(ticket, (from, msg));
        ticket.to_le_bytes()
    }

    /// The sender and message a ticket stands for (once).
    pub(crate) fn redeem(&self, ticket: &[u8]) -> Option<(usize, M)> {
        let ticket = u64::from_le_bytes(ticket.try_into().ok()?);
        self.letters.borrow_mut().remove(&ticket)
    }
}
