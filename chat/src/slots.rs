//! Slots towards Gemini, shared fairly: at most `total` calls in flight (an answer holds its
//! slot until it ends, an upload until its File is `ACTIVE`), at most `per_session` of them for
//! one browser session and `per_address` for one client address. A request over a cap waits
//! (up to `PARLEY_UPSTREAM_WAIT`, then [`ChatError::Busy`]); a freed slot goes to the waiting
//! request whose address holds the fewest slots, the earliest among equals — so that one
//! visitor with many cookies or many requests can neither take every slot nor keep others
//! waiting behind its queue.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::sync::oneshot;

use crate::{ChatError, ClientAddress, Principal};

/// How many slots there are, and how many one session or one address may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCaps {
    /// Slots in all (`PARLEY_UPSTREAM_CONCURRENCY`).
    pub total: usize,
    /// Slots one browser session may hold (`PARLEY_UPSTREAM_PER_SESSION`).
    pub per_session: usize,
    /// Slots one client address may hold (`PARLEY_UPSTREAM_PER_ADDRESS`).
    pub per_address: usize,
}

/// The slots. Cheap to clone; every clone shares them.
#[derive(Debug, Clone)]
pub struct UpstreamSlots {
    caps: SlotCaps,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    in_use: usize,
    by_session: HashMap<parley_store::Owner, usize>,
    by_address: HashMap<String, usize>,
    waiting: VecDeque<Waiter>,
    next_id: u64,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    holder: Holder,
    granted: oneshot::Sender<()>,
}

/// Who holds (or waits for) a slot.
#[derive(Debug, Clone)]
struct Holder {
    principal: parley_store::Owner,
    address: String,
}

impl State {
    fn held_by(&self, holder: &Holder) -> (usize, usize) {
        (
            self.by_address.get(&holder.address).copied().unwrap_or(0),
            self.by_session.get(&holder.principal).copied().unwrap_or(0),
        )
    }

    fn may_take(&self, caps: &SlotCaps, holder: &Holder) -> bool {
        let (address, principal) = self.held_by(holder);
        self.in_use < caps.total && address < caps.per_address && principal < caps.per_session
    }

    fn take(&mut self, holder: &Holder) {
        self.in_use += 1;
        *self.by_session.entry(holder.principal.clone()).or_default() += 1;
        *self.by_address.entry(holder.address.clone()).or_default() += 1;
    }

    fn give_back(&mut self, holder: &Holder) {
        fn less<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
            if let Some(count) = map.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    map.remove(key);
                }
            }
        }
        self.in_use = self.in_use.saturating_sub(1);
        less(&mut self.by_session, &holder.principal);
        less(&mut self.by_address, &holder.address);
    }

    /// Hands free slots to waiting requests: the one whose address holds the fewest slots
    /// first, the earliest among equals; requests over a cap keep waiting.
    fn hand_over(&mut self, caps: &SlotCaps) {
        while self.in_use < caps.total {
            let next = self
                .waiting
                .iter()
                .enumerate()
                .filter(|(_, w)| self.may_take(caps, &w.holder))
                .min_by_key(|(i, w)| (self.held_by(&w.holder), *i))
                .map(|(i, _)| i);
            let Some(waiter) = next.and_then(|i| self.waiting.remove(i)) else { return };
            self.take(&waiter.holder);
            if waiter.granted.send(()).is_err() {
                // Its request is gone (cannot happen while `Waiting` cleans up; kept safe).
                self.give_back(&waiter.holder);
            }
        }
    }
}

impl UpstreamSlots {
    /// Slots with these caps (each at least 1).
    pub fn new(caps: SlotCaps) -> Self {
        let caps = SlotCaps {
            total: caps.total.max(1),
            per_session: caps.per_session.max(1),
            per_address: caps.per_address.max(1),
        };
        UpstreamSlots { caps, state: Arc::default() }
    }

    /// The caps.
    pub fn caps(&self) -> SlotCaps {
        self.caps
    }

    /// Slots in use now.
    pub fn in_use(&self) -> usize {
        self.lock().in_use
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for `session` at `address`, waiting up to `wait` for one within the caps.
    ///
    /// # Errors
    /// [`ChatError::Busy`] when none is had in time.
    pub async fn acquire(
        &self,
        principal: &Principal,
        address: &ClientAddress,
        wait: Duration,
    ) -> Result<UpstreamSlot, ChatError> {
        let holder = Holder { principal: principal.owner(), address: address.0.clone() };
        let (granted, mut receiver) = oneshot::channel();
        let id = {
            let mut state = self.lock();
            if state.may_take(&self.caps, &holder) {
                state.take(&holder);
                return Ok(UpstreamSlot { slots: self.clone(), holder });
            }
            metrics::counter!("parley_upstream_slot_waits_total").increment(1);
            let id = state.next_id;
            state.next_id += 1;
            state.waiting.push_back(Waiter { id, holder: holder.clone(), granted });
            id
        };
        let mut waiting = Waiting { slots: self, id, holder, done: false };
        match tokio::time::timeout(wait, &mut receiver).await {
            Ok(Ok(())) => {
                waiting.done = true;
                Ok(UpstreamSlot { slots: self.clone(), holder: waiting.holder.clone() })
            }
            _ => {
                tracing::warn!("no free slot towards Gemini");
                metrics::counter!("parley_upstream_busy_total").increment(1);
                Err(ChatError::Busy)
            }
        }
    }
}

/// A waiting request: when it gives up (timeout, or its request is dropped), it leaves the
/// queue — or gives back the slot granted to it in the meantime.
struct Waiting<'a> {
    slots: &'a UpstreamSlots,
    id: u64,
    holder: Holder,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.slots.lock();
        if let Some(i) = state.waiting.iter().position(|w| w.id == self.id) {
            state.waiting.remove(i);
        } else {
            state.give_back(&self.holder);
            state.hand_over(&self.slots.caps);
        }
    }
}

/// A slot towards Gemini, given back when dropped.
#[derive(Debug)]
pub struct UpstreamSlot {
    slots: UpstreamSlots,
    holder: Holder,
}

impl Drop for UpstreamSlot {
    fn drop(&mut self) {
        let mut state = self.slots.lock();
        state.give_back(&self.holder);
        state.hand_over(&self.slots.caps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A principal of its own for each `name`, at `address`.
    fn who(name: &str, address: &str) -> (Principal, ClientAddress) {
        use sha2::Digest;
        let id = hex::encode(&sha2::Sha256::digest(name.as_bytes())[..16]);
        let session = parley_store::SessionId::parse(&id).expect("32 hex digits");
        (Principal::anonymous(session), ClientAddress(address.into()))
    }

    /// How long a test request waits: on tokio's paused clock (time moves only when every task
    /// waits), so each step is decided by order, never by how fast the machine is.
    const NOW: Duration = Duration::from_millis(20);

    #[tokio::test(start_paused = true)]
    async fn caps_hold_per_session_per_address_and_in_all() {
        let slots = UpstreamSlots::new(SlotCaps { total: 4, per_session: 2, per_address: 3 });
        let (s1, a) = who("s1", "a");
        let (s2, _) = who("s2", "a");
        let first = slots.acquire(&s1, &a, NOW).await.unwrap();
        let _second = slots.acquire(&s1, &a, NOW).await.unwrap();
        assert!(matches!(slots.acquire(&s1, &a, NOW).await, Err(ChatError::Busy)), "per session");
        let _third = slots.acquire(&s2, &a, NOW).await.unwrap();
        assert!(matches!(slots.acquire(&s2, &a, NOW).await, Err(ChatError::Busy)), "per address");
        let (s3, b) = who("s3", "b");
        let _fourth = slots.acquire(&s3, &b, NOW).await.unwrap();
        let (s4, c) = who("s4", "c");
        assert!(matches!(slots.acquire(&s4, &c, NOW).await, Err(ChatError::Busy)), "in all");
        assert_eq!(slots.in_use(), 4);
        drop(first);
        assert!(slots.acquire(&s4, &c, NOW).await.is_ok(), "a freed slot is taken");
        assert_eq!(slots.lock().waiting.len(), 0, "nobody left waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn a_freed_slot_goes_to_the_address_holding_the_fewest() {
        let slots = UpstreamSlots::new(SlotCaps { total: 2, per_session: 8, per_address: 8 });
        let (flood, a) = who("flood", "a");
        let held = slots.acquire(&flood, &a, NOW).await.unwrap();
        let _held2 = slots.acquire(&flood, &a, NOW).await.unwrap();
        // The flooding address queues first; another visitor queues after it.
        let wait = Duration::from_secs(5);
        let queued = {
            let slots = slots.clone();
            let (flood, a) = (flood.clone(), a.clone());
            tokio::spawn(async move { slots.acquire(&flood, &a, wait).await.map(|_| "flood") })
        };
        tokio::time::sleep(NOW).await;
        let other = {
            let slots = slots.clone();
            tokio::spawn(async move {
                let (s, b) = who("visitor", "b");
                let slot = slots.acquire(&s, &b, wait).await;
                slot.map(|_| "visitor")
            })
        };
        tokio::time::sleep(NOW).await;
        drop(held);
        assert!(matches!(other.await.unwrap(), Ok("visitor")), "the other address goes first");
        // The visitor's slot came back when its task ended: the flood gets it.
        assert!(matches!(queued.await.unwrap(), Ok("flood")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_gives_up_leaves_no_slot_behind() {
        let slots = UpstreamSlots::new(SlotCaps { total: 1, per_session: 1, per_address: 1 });
        let (s, a) = who("s", "a");
        let held = slots.acquire(&s, &a, NOW).await.unwrap();
        let (t, b) = who("t", "b");
        let abandoned = {
            let slots = slots.clone();
            let (t, b) = (t.clone(), b.clone());
            tokio::spawn(
                async move { slots.acquire(&t, &b, Duration::from_secs(60)).await.map(drop) },
            )
        };
        tokio::time::sleep(NOW).await;
        abandoned.abort();
        let _ = abandoned.await;
        drop(held);
        assert_eq!(slots.in_use(), 0);
        assert!(slots.acquire(&t, &b, NOW).await.is_ok());
    }
}
