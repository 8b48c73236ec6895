//! The statistics behind the seed tables: a t-interval across seeds, and a paired bootstrap of
//! an accuracy difference over the items two evaluations share.
//!
//! Accuracy follows `evaluate`'s rule (its module header): per item, the majority of its
//! parsed verdicts; an item whose verdicts tie, or that has none parsed, leaves the
//! denominator. The bootstrap recomputes exactly that ratio on every resample, so its point
//! estimate is the difference of the two accuracies as `evaluate` reports them whenever both
//! evaluations scored the same items.

/// Two-sided 97.5% quantiles of Student's t for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010,
    2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687,
    2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
];

/// The 97.5% quantile of Student's t with `df` degrees of freedom: tabulated up to 30, then
/// the Cornish–Fisher expansion around the normal quantile (error < 1e-4 there).
pub fn t975(df: usize) -> f64 {
    if df == 0 {
        return f64::NAN;
    }
    if df <= T975.len() {
        return T975[df - 1];
    }
    let z: f64 = 1.959_963_984_540_054;
    let v = df as f64;
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / (384.0 * v.powi(3))
}

/// Mean of `values` and its 95% t-interval, treating them as independent draws (one per seed):
/// `mean ± t(0.975, n-1) · sd / √n`. NaN values are left out; with fewer than two values the
/// bounds are NaN (one seed says nothing about the spread between seeds).
pub fn mean_interval(values: &[f64]) -> (f64, f64, f64) {
    let xs: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, f64::NAN, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t975(n - 1) * (var / n as f64).sqrt();
    (mean, mean - half, mean + half)
}

/// One item's parsed verdicts: how many named the better answer and how many the other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Votes {
    /// Parsed verdicts that were right.
    pub right: u32,
    /// Parsed verdicts that were wrong.
    pub wrong: u32,
}

/// `evaluate`'s accuracy over `items`: correct items over items with a strict majority; NaN
/// when none has one.
pub fn accuracy<'a>(items: impl IntoIterator<Item = &'a Votes>) -> f64 {
    let (mut correct, mut n) = (0usize, 0usize);
    for v in items {
        if v.right != v.wrong {
            n += 1;
            correct += usize::from(v.right > v.wrong);
        }
    }
    if n == 0 {
        f64::NAN
    } else {
        correct as f64 / n as f64
    }
}

/// A paired difference of two evaluations on the same items.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Paired {
    /// `accuracy(after) - accuracy(before)` on the shared items.
    pub difference: f64,
    /// 95% percentile-bootstrap interval.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Items both evaluations scored.
    pub items: usize,
}

/// Resamples of the paired bootstrap.
pub const RESAMPLES: usize = 2000;

/// The difference `after - before` of `evaluate`'s accuracy, with a 95% interval from a paired
/// bootstrap: items are resampled with replacement, each carrying both evaluations' votes, so
/// the interval keeps the correlation between two judges scored on one bench (which a
/// difference of two independent intervals would throw away). `pairs[i]` is item `i` as
/// (before, after). Seeded: the same items give the same interval. Resamples where either
/// accuracy is undefined (no item with a majority) are dropped.
pub fn paired_bootstrap(pairs: &[(Votes, Votes)], resamples: usize, seed: u64) -> Paired {
    let difference = accuracy(pairs.iter().map(|p| &p.1)) - accuracy(pairs.iter().map(|p| &p.0));
    let mut rng = SplitMix64(seed ^ 0x5eed_b007_57a9);
    let mut diffs = Vec::with_capacity(resamples);
    let n = pairs.len();
    if n > 0 {
        let mut before = Vec::with_capacity(n);
        let mut after = Vec::with_capacity(n);
        for _ in 0..resamples {
            before.clear();
            after.clear();
            for _ in 0..n {
                let (b, a) = pairs[rng.below(n)];
                before.push(b);
                after.push(a);
            }
            let d = accuracy(&after) - accuracy(&before);
            if d.is_finite() {
                diffs.push(d);
            }
        }
    }
    diffs.sort_by(f64::total_cmp);
    let (lo, hi) = if diffs.len() < 40 {
        (f64::NAN, f64::NAN)
    } else {
        (quantile(&diffs, 0.025), quantile(&diffs, 0.975))
    };
    Paired {
        difference,
        lo,
        hi,
        items: n,
    }
}

/// Linear-interpolated quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}

/// A small, fast, seedable generator (Steele et al.'s SplitMix64): the bootstrap needs
/// reproducible uniform indices, not cryptographic quality.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for bench sizes).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables_and_approach_the_normal() {
        assert!((t975(1) - 12.7062).abs() < 1e-4);
        assert!((t975(2) - 4.3027).abs() < 1e-4);
        // Published: t(0.975; 40) = 2.0211, t(0.975; 120) = 1.9799.
        assert!((t975(40) - 2.0211).abs() < 2e-4, "{}", t975(40));
        assert!((t975(120) - 1.9799).abs() < 2e-4, "{}", t975(120));
        assert!(t975(0).is_nan());
    }

    #[test]
    fn mean_interval_of_three_seeds() {
        // 0.5, 0.6, 0.7: mean 0.6, sd 0.1, half-width 4.3027 * 0.1 / sqrt(3) = 0.24841.
        let (m, lo, hi) = mean_interval(&[0.5, 0.6, 0.7]);
        assert!((m - 0.6).abs() < 1e-12);
        assert!((hi - m - 0.248_417).abs() < 1e-5, "{lo} {hi}");
        assert!((m - lo - 0.248_417).abs() < 1e-5);
        let (m, lo, hi) = mean_interval(&[0.4]);
        assert_eq!(m, 0.4);
        assert!(lo.is_nan() && hi.is_nan());
        assert!(mean_interval(&[]).0.is_nan());
        assert_eq!(mean_interval(&[0.5, f64::NAN, 0.5]), (0.5, 0.5, 0.5));
    }

    #[test]
    fn accuracy_follows_evaluates_rule() {
        let v = |right, wrong| Votes { right, wrong };
        // A majority right, a majority wrong, a tie, nothing parsed.
        let items = [v(2, 1), v(0, 3), v(1, 1), v(0, 0)];
        assert_eq!(accuracy(&items), 0.5);
        assert!(accuracy(&[v(0, 0)]).is_nan());
    }

    #[test]
    fn paired_bootstrap_sees_a_consistent_gain_and_no_gain() {
        let right = Votes { right: 1, wrong: 0 };
        let wrong = Votes { right: 0, wrong: 1 };
        // 200 items: 60 turn from wrong to right, 10 from right to wrong, the rest stay.
        let mut pairs = Vec::new();
        pairs.extend(std::iter::repeat_n((wrong, right), 60));
        pairs.extend(std::iter::repeat_n((right, wrong), 10));
        pairs.extend(std::iter::repeat_n((right, right), 70));
        pairs.extend(std::iter::repeat_n((wrong, wrong), 60));
        let p = paired_bootstrap(&pairs, RESAMPLES, 1);
        assert!((p.difference - 0.25).abs() < 1e-12);
        assert_eq!(p.items, 200);
        // McNemar-style SE: sqrt(60 + 10 - 50^2/200) / 200 = 0.0379; ± 1.96 SE ≈ ± 0.074.
        assert!(p.lo > 0.17 && p.lo < 0.2, "{p:?}");
        assert!(p.hi > 0.3 && p.hi < 0.33, "{p:?}");
        assert_eq!(p, paired_bootstrap(&pairs, RESAMPLES, 1), "seeded");
        // The same judge twice: no difference, and an interval of width 0.
        let same: Vec<_> = pairs.iter().map(|&(b, _)| (b, b)).collect();
        let p = paired_bootstrap(&same, RESAMPLES, 1);
        assert_eq!((p.difference, p.lo, p.hi), (0.0, 0.0, 0.0));
        // No items: an unknown difference.
        let p = paired_bootstrap(&[], RESAMPLES, 1);
        assert!(p.difference.is_nan() && p.lo.is_nan());
    }
}
