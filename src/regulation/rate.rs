//! Per-address request rates of the token and sign-in endpoints: a token bucket per client
//! address, in memory on each node.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use moka::sync::Cache;

use crate::config::RateConfig;

/// Most client addresses tracked at once; the least recently seen go first.
const MAX_ADDRESSES: u64 = 200_000;

/// Token buckets by client address.
pub struct RateLimit {
    buckets: Option<(Quota, Cache<IpAddr, Arc<DefaultDirectRateLimiter>>)>,
    clock: DefaultClock,
}

impl RateLimit {
    /// Buckets per the config; `per_second: 0` turns the limit off.
    pub fn new(config: &RateConfig) -> RateLimit {
        let buckets = NonZeroU32::new(config.per_second)
            .zip(NonZeroU32::new(config.burst()))
            .map(|(rate, burst)| {
                let quota = Quota::per_second(rate).allow_burst(burst);
                // A bucket idle for as long as it takes to refill is full: forgetting it loses
                // nothing, and keeps memory bounded by the addresses seen recently.
                let refill =
                    Duration::from_secs_f64(f64::from(burst.get()) / f64::from(rate.get()));
                let cache = Cache::builder()
                    .max_capacity(MAX_ADDRESSES)
                    .time_to_idle(refill + Duration::from_secs(1))
                    .build();
                (quota, cache)
            });
        RateLimit {
            buckets,
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from the address's bucket: `None` when allowed, else the whole
    /// seconds to wait (at least 1) for `Retry-After`.
    pub fn check(&self, ip: Option<IpAddr>) -> Option<u64> {
        let (quota, cache) = self.buckets.as_ref()?;
        let ip = super::address_key(ip?);
        let bucket = cache.get_with(ip, || Arc::new(DefaultDirectRateLimiter::direct(*quota)));
        match bucket.check() {
            Ok(()) => None,
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Some(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_address_waits_and_others_do_not() {
        let limit = RateLimit::new(&RateConfig {
            per_second: 1,
            burst: Some(3),
        });
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(limit.check(Some(a)), None);
        }
        assert_eq!(limit.check(Some(a)), Some(1));
        assert_eq!(limit.check(Some(b)), None);
        // Without an address (not a TCP peer) nothing is limited.
        for _ in 0..10 {
            assert_eq!(limit.check(None), None);
        }
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limit = RateLimit::new(&RateConfig {
            per_second: 0,
            burst: None,
        });
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..1000 {
            assert_eq!(limit.check(Some(a)), None);
        }
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_bucket() {
        let limit = RateLimit::new(&RateConfig {
            per_second: 1,
            burst: Some(1),
        });
        let a: IpAddr = "2001:db8::1".parse().expect("ip");
        let b: IpAddr = "2001:db8::2".parse().expect("ip");
        assert_eq!(limit.check(Some(a)), None);
        assert!(limit.check(Some(b)).is_some());
    }
}
