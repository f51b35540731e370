//! Key choice: a small seeded PRNG (splitmix64; the generator needs speed and
//! reproducibility, not cryptographic quality) and uniform or zipfian key indices.
//!
//! The zipfian generator is YCSB's (Gray et al., "Quickly generating billion-record
//! synthetic databases"): zeta(n, theta) is computed once, each draw is O(1). Index 0 is the
//! hottest key; keys are not scrambled, so hot keys are the low-numbered ones.

use crate::config::Distribution;

/// splitmix64.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); n > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "empty range");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability pct/100.
    pub fn percent(&mut self, pct: u32) -> bool {
        self.below(100) < u64::from(pct)
    }
}

/// Draws key indices in [0, n).
#[derive(Debug, Clone)]
pub enum KeyChooser {
    Uniform { n: u64 },
    Zipfian(Zipfian),
}

impl KeyChooser {
    pub fn new(n: u64, distribution: Distribution, theta: f64) -> Self {
        assert!(n > 0, "no keys to choose from");
        match distribution {
            Distribution::Uniform => KeyChooser::Uniform { n },
            Distribution::Zipfian => KeyChooser::Zipfian(Zipfian::new(n, theta)),
        }
    }

    pub fn next(&self, rng: &mut Rng) -> u64 {
        match self {
            KeyChooser::Uniform { n } => rng.below(*n),
            KeyChooser::Zipfian(z) => z.next(rng),
        }
    }
}

/// YCSB's ZipfianGenerator over [0, n).
#[derive(Debug, Clone)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    pub fn new(n: u64, theta: f64) -> Self {
        assert!(
            theta > 0.0 && theta < 1.0,
            "zipfian theta {theta} not in (0, 1)"
        );
        let zeta = |count: u64| {
            (1..=count)
                .map(|i| 1.0 / (i as f64).powf(theta))
                .sum::<f64>()
        };
        let zetan = zeta(n);
        let zeta2 = zeta(2.min(n));
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Self {
            n,
            theta,
            alpha,
            zetan,
            eta,
        }
    }

    pub fn next(&self, rng: &mut Rng) -> u64 {
        let u = rng.next_f64();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let v = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        v.min(self.n - 1)
    }
}

/// The path of key `i` under `prefix`.
pub fn key_path(prefix: &str, i: u64) -> String {
    format!("{prefix}/k{i:08}")
}

/// The key index of a path made by [`key_path`].
pub fn key_index(path: &str) -> Option<usize> {
    path.rsplit_once("/k")?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_stays_in_range_and_spreads() {
        let mut rng = Rng::new(1);
        let k = KeyChooser::new(10, Distribution::Uniform, 0.99);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[k.next(&mut rng) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[test]
    fn zipfian_favours_low_keys() {
        let mut rng = Rng::new(2);
        let k = KeyChooser::new(1000, Distribution::Zipfian, 0.99);
        let mut hot = 0;
        for _ in 0..10_000 {
            let i = k.next(&mut rng);
            assert!(i < 1000);
            if i < 10 {
                hot += 1;
            }
        }
        // With theta 0.99 over 1000 keys the first 10 draw about 38% of the accesses.
        assert!((3000..4600).contains(&hot), "{hot}");
    }

    #[test]
    fn key_paths_round_trip() {
        assert_eq!(key_path("/b", 42), "/b/k00000042");
        assert_eq!(key_index("/b/k00000042"), Some(42));
        assert_eq!(key_index("/b/x"), None);
    }
}
