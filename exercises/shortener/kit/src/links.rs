//! The link databases of topic 19.
//!
//! - [`LinkStore`], behind `redirect_api`: creates links (each write takes a moment, as a
//!   database round trip does), looks them up and counts clicks. Its codes come from a plain
//!   counter, scrambled: the stand-in for the allocator you built in `code_allocation`.
//! - [`SlowStore`], behind `storage_and_cache`: a database that takes `latency` per read (tokio
//!   time, so a paused test clock plays it instantly) and counts every read, per code.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long [`LinkStore::create`] takes: one write to the database.
pub const CREATE_LATENCY: Duration = Duration::from_millis(5);

#[derive(Debug, Default)]
pub struct LinkStore {
    links: Mutex<HashMap<String, (String, u64)>>,
    next: AtomicU64,
}

impl LinkStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a new link to `url` and returns its fresh code. Every call creates a link: the store
    /// knows nothing of idempotency keys.
    pub async fn create(&self, url: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(CREATE_LATENCY).await;
        // A scrambled counter (an odd multiplier is a bijection on u32): unique, not sequential.
        let code = format!("{:08x}", (n as u32).wrapping_mul(0x9E37_79B1));
        let previous = self
            .links
            .lock()
            .unwrap()
            .insert(code.clone(), (url.to_string(), 0));
        assert!(previous.is_none(), "codes are unique");
        code
    }

    /// The URL of `code`, if it exists.
    pub async fn url(&self, code: &str) -> Option<String> {
        let links = self.links.lock().unwrap();
        links.get(code).map(|(url, _)| url.clone())
    }

    /// Counts one click on `code`; `false` (and nothing counted) if there is no such link.
    pub async fn click(&self, code: &str) -> bool {
        let mut links = self.links.lock().unwrap();
        match links.get_mut(code) {
            Some((_, clicks)) => {
                *clicks += 1;
                true
            }
            None => false,
        }
    }

    /// The clicks counted on `code`, if it exists.
    pub fn clicks(&self, code: &str) -> Option<u64> {
        self.links.lock().unwrap().get(code).map(|(_, c)| *c)
    }

    /// How many links exist.
    pub fn len(&self) -> usize {
        self.links.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every click counted, over all links.
    pub fn total_clicks(&self) -> u64 {
        self.links.lock().unwrap().values().map(|(_, c)| c).sum()
    }
}

/// A database that is slow to read and counts its reads.
#[derive(Debug)]
pub struct SlowStore {
    latency: Duration,
    links: Mutex<HashMap<String, String>>,
    reads: Mutex<HashMap<String, u64>>,
    total: AtomicU64,
}

impl SlowStore {
    pub fn new(latency: Duration) -> Self {
        SlowStore {
            latency,
            links: Mutex::new(HashMap::new()),
            reads: Mutex::new(HashMap::new()),
            total: AtomicU64::new(0),
        }
    }

    /// Creates or changes a link (setup and tests; writes are not what this store is about).
    pub fn set(&self, code: &str, url: &str) {
        let mut links = self.links.lock().unwrap();
        links.insert(code.to_string(), url.to_string());
    }

    /// Reads `code`: takes `latency`, counts one read, returns the URL as it is when the read
    /// ends (`None`: no such code).
    pub async fn load(&self, code: &str) -> Option<String> {
        self.total.fetch_add(1, Ordering::SeqCst);
        *self
            .reads
            .lock()
            .unwrap()
            .entry(code.to_string())
            .or_default() += 1;
        tokio::time::sleep(self.latency).await;
        self.links.lock().unwrap().get(code).cloned()
    }

    /// Reads started so far, of every code.
    pub fn reads(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }

    /// Reads of `code` started so far.
    pub fn reads_of(&self, code: &str) -> u64 {
        self.reads.lock().unwrap().get(code).copied().unwrap_or(0)
    }

    pub fn latency(&self) -> Duration {
        self.latency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn link_store_creates_unique_codes_and_counts_clicks() {
        let store = LinkStore::new();
        let a = store.create("https://a.example").await;
        let b = store.create("https://a.example").await;
        assert_ne!(a, b);
        assert!(store.click(&a).await);
        assert!(!store.click("nope").await);
        assert_eq!(store.clicks(&a), Some(1));
        assert_eq!(store.url(&b).await.as_deref(), Some("https://a.example"));
        assert_eq!((store.len(), store.total_clicks()), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_store_takes_its_latency_and_counts_reads() {
        let store = SlowStore::new(Duration::from_millis(50));
        store.set("a", "https://a.example");
        let start = tokio::time::Instant::now();
        assert_eq!(store.load("a").await.as_deref(), Some("https://a.example"));
        assert_eq!(store.load("b").await, None);
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        assert_eq!((store.reads(), store.reads_of("a")), (2, 1));
    }
}
