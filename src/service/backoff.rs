//! Retry delays: exponential from a base, capped, with jitter (pure).

/// Delays of `base_ms`, 2×, 4×… up to `cap_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: u64,
    pub cap_ms: u64,
}

impl Backoff {
    /// The delay before try `attempt + 1`, after `attempt` failed tries (1 → `base_ms`).
    /// `jitter` in [0, 1) takes off up to a quarter, so retries from many jobs spread out
    /// but a delay never shrinks below three quarters of its step.
    pub fn delay_ms(&self, attempt: u32, jitter: f64) -> u64 {
        let step = self
            .base_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(40))
            .min(self.cap_ms);
        let off = (step as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as u64;
        step - off
    }
}

/// A number in [0, 1) from the system's randomness.
pub fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap() {
        let b = Backoff {
            base_ms: 1_000,
            cap_ms: 1_800_000,
        };
        let d: Vec<u64> = (1..=13).map(|a| b.delay_ms(a, 0.0)).collect();
        assert_eq!(&d[..5], &[1_000, 2_000, 4_000, 8_000, 16_000]);
        assert_eq!(d[11], 1_800_000);
        assert_eq!(b.delay_ms(200, 0.0), 1_800_000);
        assert_eq!(b.delay_ms(1, 0.999), 751);
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
