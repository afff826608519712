//! A round of the load benchmark: the order of its slices, and each scenario's figures paired
//! with the reference's (the passthrough's) slices just before and just after it. Pure, so
//! `tests/load_report.rs` runs its tests (the bench has no test harness).

/// A slice's figures: requests a second, p50, p99, time to first byte at p99, CPU µs a
/// request (NaN when not measured).
pub type Figures = [f64; 5];

/// The targets round `round` measures, in order: the reference, then each other target
/// followed by the reference again (reference, A, reference, B, ..., reference). The others'
/// order is rotated by one each round, so no scenario always follows the same one.
pub fn order(targets: usize, reference: usize, round: usize) -> Vec<usize> {
    let others: Vec<usize> = (0..targets).filter(|&i| i != reference).collect();
    let mut seq = vec![reference];
    for k in 0..others.len() {
        seq.push(others[(k + round) % others.len()]);
        seq.push(reference);
    }
    seq
}

/// A round's figures from its slices (`seq` from [`order`], `slices` measured in that
/// order): every other target's own figures with the mean of the reference's around it, and
/// the reference's own as the mean of all its slices in the round.
pub fn pair(
    seq: &[usize],
    slices: &[Figures],
    reference: usize,
) -> (Vec<(usize, Figures, Figures)>, Figures) {
    let mut scenarios = Vec::with_capacity(seq.len() / 2);
    let mut refs = Vec::with_capacity(seq.len() / 2 + 1);
    for (at, (&target, figures)) in seq.iter().zip(slices).enumerate() {
        if target == reference {
            refs.push(*figures);
            continue;
        }
        let around = [at.checked_sub(1), Some(at + 1)]
            .into_iter()
            .flatten()
            .filter(|&j| seq.get(j) == Some(&reference))
            .filter_map(|j| slices.get(j).copied())
            .collect::<Vec<_>>();
        scenarios.push((target, *figures, mean(&around)));
    }
    (scenarios, mean(&refs))
}

/// The figure-by-figure mean of slices.
pub fn mean(slices: &[Figures]) -> Figures {
    let n = slices.len().max(1) as f64;
    let mut m = [0.0; 5];
    for s in slices {
        m.iter_mut().zip(s).for_each(|(m, x)| *m += x);
    }
    m.map(|sum| sum / n)
}

// Run by tests/load_report.rs. Paths in full: built into the bench (no harness), the tests
// are left out and a `use` beside them would be unused.
#[cfg(test)]
mod tests {
    /// Every scenario sits between two reference slices, each once a round, its place
    /// rotating from round to round.
    #[test]
    fn a_round_brackets_every_scenario_with_the_reference() {
        use super::order;
        assert_eq!(order(4, 1, 0), vec![1, 0, 1, 2, 1, 3, 1]);
        assert_eq!(order(4, 1, 1), vec![1, 2, 1, 3, 1, 0, 1]);
        for round in 0..5 {
            let seq = order(5, 2, round);
            assert_eq!(seq.len(), 9);
            for (at, &t) in seq.iter().enumerate() {
                let reference_here = at % 2 == 0;
                assert_eq!(t == 2, reference_here, "round {round}: {seq:?}");
            }
            let mut others: Vec<usize> = seq.iter().copied().filter(|&t| t != 2).collect();
            others.sort_unstable();
            assert_eq!(others, vec![0, 1, 3, 4]);
        }
    }

    /// A scenario is held to the mean of the two reference slices next to it, not to the
    /// round's reference as a whole; the reference's round figure is the mean of its slices.
    #[test]
    fn a_scenario_pairs_with_the_reference_slices_around_it() {
        use super::{order, pair};
        let f = |x: f64| [x, x + 1.0, x + 2.0, x + 3.0, x + 4.0];
        let seq = order(3, 0, 0);
        assert_eq!(seq, vec![0, 1, 0, 2, 0]);
        // The machine slows through the round: the reference serves 100, then 60, then 20.
        let slices = [f(100.0), f(90.0), f(60.0), f(18.0), f(20.0)];
        let (scenarios, reference) = pair(&seq, &slices, 0);
        assert_eq!(
            scenarios,
            vec![(1, f(90.0), f(80.0)), (2, f(18.0), f(40.0))]
        );
        assert_eq!(reference, f(60.0));
    }
}
