//! Who is following which account's conversations in this process, and telling them.
//!
//! Each followed account has one `tokio::sync::watch` channel holding its latest cursor: a
//! write announces its cursor, every subscription of the account wakes, and a subscription
//! that was busy sees only the latest value — a device never falls behind on a queue, it reads
//! whatever changed since its own cursor. A channel lives while a subscription of it does.
//!
//! On PostgreSQL the writes of other replicas arrive as notifications on channel
//! [`CHANNEL`] (payload `{account} {cursor}`), sent by the writing transaction and delivered
//! by PostgreSQL at its commit; one connection per process listens, from the first
//! subscription on, and starts again after a failure, announcing every followed account's
//! cursor afresh (what was written while nobody listened is not lost, only late).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::watch;

/// The PostgreSQL notification channel of conversation writes.
pub const CHANNEL: &str = "parley_sync";

/// The followed accounts of this process.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    accounts: Mutex<HashMap<String, watch::Sender<i64>>>,
}

impl Hub {
    /// Follows `account`.
    pub(crate) fn subscribe(self: &Arc<Self>, account: &str) -> Subscription {
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = accounts.entry(account.to_string()).or_insert_with(|| watch::channel(0).0);
        Subscription { receiver: sender.subscribe(), hub: self.clone(), account: account.into() }
    }

    /// `account`'s cursor is now at least `cursor`: its subscriptions wake (unless they have
    /// seen as far already).
    pub(crate) fn announce(&self, account: &str, cursor: i64) {
        let accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = accounts.get(account) {
            sender.send_if_modified(|seen| {
                let newer = cursor > *seen;
                if newer {
                    *seen = cursor;
                }
                newer
            });
        }
    }

    /// The accounts followed now.
    pub(crate) fn followed(&self) -> Vec<String> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// How many subscriptions are open, in all (for the metrics and tests).
    pub(crate) fn subscriptions(&self) -> usize {
        let accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        accounts.values().map(watch::Sender::receiver_count).sum()
    }
}

/// One follower of an account's conversations (a device's open event stream).
#[derive(Debug)]
pub struct Subscription {
    receiver: watch::Receiver<i64>,
    hub: Arc<Hub>,
    account: String,
}

impl Subscription {
    /// Waits until the account's cursor moves past what this subscription last saw, and
    /// gives it.
    pub async fn changed(&mut self) -> i64 {
        // The hub keeps the sender while this receiver lives: `changed` cannot fail.
        let _ = self.receiver.changed().await;
        *self.receiver.borrow_and_update()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut accounts = self.hub.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        if accounts.get(&self.account).is_some_and(|s| s.receiver_count() <= 1) {
            accounts.remove(&self.account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_wakes_its_accounts_followers_only() {
        let hub = Arc::new(Hub::default());
        let (mut ann, mut ann_too, bob) =
            (hub.subscribe("ann"), hub.subscribe("ann"), hub.subscribe("bob"));
        assert_eq!(hub.subscriptions(), 3);
        hub.announce("ann", 4);
        hub.announce("ann", 3); // late news of an older write wakes nobody
        hub.announce("nobody", 9);
        assert_eq!(ann.changed().await, 4);
        assert_eq!(ann_too.changed().await, 4);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), ann.changed());
        assert!(waiting.await.is_err(), "nothing new");
        drop((ann, ann_too));
        assert_eq!(hub.followed(), ["bob"], "an account nobody follows is forgotten");
        drop(bob);
        assert_eq!(hub.subscriptions(), 0);
    }
}
