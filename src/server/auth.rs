//! Bearer tokens and rate limits: who is calling, and are they calling too often.
//!
//! A token is checked with Argon2id by the library (`service::authenticate`), deliberately
//! slow. The server verifies a token once and then remembers `sha256(token) → Caller`; the map is
//! keyed by the digest, so a lookup compares digests, never the secret itself byte by byte.
//! What the cache must not hide is a revocation or an expiry: every request, cached or not,
//! goes through `service::recheck`, a cheap store lookup.
//!
//! Rate limits are token buckets keyed by the same digest, checked *before* the token is
//! verified, so hammering with one token costs no Argon2 work past its burst. Tokens the cache
//! does not know (new ones, or guesses) also draw from one server-wide bucket, which bounds the
//! Argon2 work an attacker can make the server do with random tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use super::error::ApiError;
use super::Shared;
use crate::access::Caller;
use crate::service;

/// `sha256(token)`.
pub(crate) type TokenDigest = [u8; 32];

/// Token verifications (cache misses) per second, server-wide.
const VERIFY_RATE: f64 = 5.0;
/// Cache misses allowed at once before [`VERIFY_RATE`] applies.
const VERIFY_BURST: f64 = 20.0;
/// Past this many entries the cache / bucket maps are pruned.
const MAX_ENTRIES: usize = 10_000;

pub(crate) fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// Verified tokens.
#[derive(Default)]
pub(crate) struct TokenCache {
    map: Mutex<HashMap<TokenDigest, Caller>>,
}

impl TokenCache {
    fn get(&self, d: &TokenDigest) -> Option<Caller> {
        lock(&self.map).get(d).cloned()
    }

    fn insert(&self, d: TokenDigest, caller: Caller) {
        let mut m = lock(&self.map);
        if m.len() >= MAX_ENTRIES {
            m.clear(); // callers re-verify once; simpler than an LRU for a rare event
        }
        m.insert(d, caller);
    }

    fn remove(&self, d: &TokenDigest) {
        lock(&self.map).remove(d);
    }
}

/// One token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Bucket {
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token, or says in how many whole seconds one will be there.
    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), u64> {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if rate <= 0.0 {
            Err(u64::MAX)
        } else {
            Err(((1.0 - self.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// Per-token buckets plus the server-wide verification bucket.
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<TokenDigest, Bucket>>,
    verify: Mutex<Bucket>,
}

impl RateLimiter {
    pub(crate) fn new(rate_per_second: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            rate: rate_per_second.max(0.0),
            burst,
            buckets: Mutex::new(HashMap::new()),
            verify: Mutex::new(Bucket::full(VERIFY_BURST, Instant::now())),
        }
    }

    /// One request with this token.
    fn check(&self, d: &TokenDigest) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut m = lock(&self.buckets);
        if m.len() >= MAX_ENTRIES && !m.contains_key(d) {
            // Drop buckets that have refilled: forgetting them changes nothing.
            let (rate, burst) = (self.rate, self.burst);
            m.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
            });
        }
        m.entry(*d)
            .or_insert_with(|| Bucket::full(self.burst, now))
            .take(self.rate, self.burst, now)
            .map_err(ApiError::rate_limited)
    }

    /// One Argon2 verification.
    fn check_verify(&self) -> Result<(), ApiError> {
        lock(&self.verify)
            .take(VERIFY_RATE, VERIFY_BURST, Instant::now())
            .map_err(ApiError::rate_limited)
    }
}

/// The bearer token of a request, or 401.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthenticated(
            "missing token: send `Authorization: Bearer <token>` (`verbatim user add` makes one)",
        ));
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::unauthenticated("the Authorization header is not ASCII"))?;
    match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthenticated(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

/// Resolves the caller of a request: rate limit, cache or Argon2 verification, then the
/// revocation / expiry check, every time.
async fn caller_of(s: &Arc<Shared>, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers)?;
    let d = digest(token);
    s.limiter.check(&d)?;
    if let Some(caller) = s.tokens.get(&d) {
        // Revoked, expired, or a changed role: the store's answer, every request.
        return match super::blocking(s, super::Lane::Read, move |ws, _| {
            service::recheck(ws, &caller).map_err(ApiError::from)
        })
        .await
        {
            Ok(now) => Ok(now),
            Err(e) => {
                s.tokens.remove(&d);
                Err(e)
            }
        };
    }
    s.limiter.check_verify()?;
    let token = zeroize::Zeroizing::new(token.to_string());
    let caller = super::blocking(s, super::Lane::Read, move |ws, _| {
        service::authenticate(ws, &token).map_err(ApiError::from)
    })
    .await?;
    s.tokens.insert(d, caller.clone());
    Ok(caller)
}

/// Middleware on every route but health and the OpenAPI document: puts the [`Caller`] in the
/// request's extensions, or answers 401 / 429.
pub(crate) async fn require(
    State(s): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    match caller_of(&s, req.headers()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// Locks, ignoring poisoning: the maps hold no invariant a panic could break halfway.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::full(3.0, t0);
        for _ in 0..3 {
            assert!(b.take(2.0, 3.0, t0).is_ok());
        }
        assert_eq!(b.take(2.0, 3.0, t0), Err(1));
        // Half a second at 2/s refills one token.
        assert!(b.take(2.0, 3.0, t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take(2.0, 3.0, t0 + Duration::from_millis(500)).is_err());
        // Never above the burst.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(b.take(2.0, 3.0, later).is_ok());
        }
        assert!(b.take(2.0, 3.0, later).is_err());
    }

    #[test]
    fn retry_after_rounds_up() {
        let t0 = Instant::now();
        let mut b = Bucket::full(1.0, t0);
        b.take(0.25, 1.0, t0).unwrap();
        assert_eq!(b.take(0.25, 1.0, t0), Err(4));
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "bearer vbt_abc".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), "vbt_abc");
    }
}
