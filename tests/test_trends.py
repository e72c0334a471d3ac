"""Late − early change over checkpoints: the split, the point estimate, the joint-bootstrap interval for
one seed, Student's t over several seeds, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from harness.analysis.stats import bootstrap_indices
from harness.analysis.trends import early_late, late_early_change
from synthetic import assert_rate_at_least

STEPS = np.array([0, 1, 2, 4, 16, 64, 256, 1000, 4000, 16000])
"""A Pythia-like log-spaced schedule of 10 checkpoints."""
FRACTION = 0.3  # first and last 3 checkpoints
LEVEL = 0.9
TAIL = 1e-3


@pytest.mark.parametrize(
    "n, fraction, k",
    [(10, 0.3, 3), (10, 0.25, 3), (9, 0.3, 3), (5, 0.5, 2), (5, 0.01, 1), (2, 0.3, 1), (3, 0.9, 1)],
)
def test_early_late_takes_the_first_and_last_ceil_fraction_disjointly(n, fraction, k):
    """k = ceil(fraction·n), at least 1 and at most n // 2: the first k and the last k checkpoints."""
    early, late = early_late(n, fraction)
    np.testing.assert_array_equal(early, np.arange(k))
    np.testing.assert_array_equal(late, np.arange(n - k, n))
    assert not np.intersect1d(early, late).size


def test_early_late_needs_two_checkpoints():
    """One checkpoint has no change over training: ValueError."""
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        early_late(1, 0.3)


def sequence_trajectory(mu: np.ndarray, n_seq: int, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence values y[s, t] = mu[t] + a_s + e[s, t] (a sequence effect shared by every checkpoint,
    SD 1, and checkpoint noise, SD 0.5): returns z = mean over sequences ``[n_ckpt]`` and the joint
    bootstrap ``[n_resamples, n_ckpt]`` (every checkpoint averaged over the same resampled sequences)."""
    rng = np.random.default_rng(seed)
    y = mu[None] + rng.standard_normal((n_seq, 1)) + 0.5 * rng.standard_normal((n_seq, mu.size))
    return y.mean(0), y[bootstrap_indices(n_seq, n_resamples, seed + 1)].mean(1)


def test_single_seed_point_estimate_interval_and_spearman():
    """The change is mean(z, last 3) − mean(z, first 3); the interval is the percentile interval of the
    same difference in each bootstrap row; rows with a NaN are dropped; Spearman ρ of z against ln(1+step)."""
    z, boot = sequence_trajectory(np.linspace(0.0, 2.0, STEPS.size), n_seq=40, n_resamples=200, seed=0)
    boot[5, 4] = np.nan
    change = late_early_change([z], [boot], [STEPS], FRACTION, LEVEL)
    assert change.change == pytest.approx(z[7:].mean() - z[:3].mean())
    kept = np.delete(boot, 5, axis=0)
    differences = kept[:, 7:].mean(1) - kept[:, :3].mean(1)
    np.testing.assert_allclose(change.ci, np.quantile(differences, [0.05, 0.95]))
    assert change.n_resamples == 199 and change.unit == "sequence bootstrap" and change.level == LEVEL
    assert change.early == (0, 1, 2) and change.late == (7, 8, 9) and change.per_seed == (change.change,)
    assert change.spearman == pytest.approx(stats.spearmanr(np.log1p(STEPS), z).statistic)


def test_single_seed_interval_covers_the_planted_change():
    """mu rises by 1.0 from the early to the late checkpoints (late mean − early mean = 1.0); over 200
    independent trajectories of 60 sequences the 90% joint-bootstrap interval covers 1.0 at a rate
    compatible with ≥ 87% (percentile intervals run a little short at n = 60; spurious failure ≤ 1e-3).
    The joint resampling keeps the sequence effect out of the difference: the interval is narrow
    (mean width < 0.5, while the sequence effect alone has SD 1/√60 ≈ 0.13 per checkpoint mean)."""
    mu = np.r_[np.zeros(3), np.linspace(0.2, 0.8, 4), np.ones(3)]
    covered, widths = 0, []
    for seed in range(200):
        z, boot = sequence_trajectory(mu, n_seq=60, n_resamples=200, seed=10 * seed)
        change = late_early_change([z], [boot], [STEPS], FRACTION, LEVEL)
        covered += change.ci[0] <= 1.0 <= change.ci[1]
        widths.append(change.ci[1] - change.ci[0])
    assert_rate_at_least(covered, 200, 0.87, TAIL, "coverage of the planted change")
    assert np.mean(widths) < 0.5


def test_several_seeds_use_students_t_over_seeds():
    """Three seeds (one of another length): the change is the mean of the per-seed changes and the
    interval Student's t over them (scipy); bootstrap rows are not needed; Spearman is the seeds' mean."""
    rng = np.random.default_rng(3)
    z = [rng.normal(size=10) + np.linspace(0, 1, 10), rng.normal(size=10), rng.normal(size=8)]
    steps = [STEPS, STEPS, STEPS[:8]]
    change = late_early_change(z, None, steps, FRACTION, LEVEL)
    per_seed = [v[-3:].mean() - v[:3].mean() for v in z]
    np.testing.assert_allclose(change.per_seed, per_seed)
    assert change.change == pytest.approx(np.mean(per_seed))
    want = stats.t.interval(LEVEL, 2, loc=np.mean(per_seed), scale=stats.sem(per_seed))
    np.testing.assert_allclose(change.ci, want)
    assert change.unit == "seed" and change.n_resamples == 0
    rhos = [stats.spearmanr(np.log1p(s), v).statistic for v, s in zip(z, steps)]
    assert change.spearman == pytest.approx(np.mean(rhos))


def test_several_seeds_interval_covers_the_planted_change():
    """Five seeds whose changes are 0.5 + N(0, 0.3²) (a run-to-run wander): the 90% t interval covers
    0.5 at a rate compatible with ≥ 90% over 150 replications (spurious failure ≤ 1e-3)."""
    rng = np.random.default_rng(4)
    covered = 0
    for _ in range(150):
        shifts = 0.5 + 0.3 * rng.standard_normal(5)
        z = [np.r_[np.zeros(5), np.full(5, s)] + 0.1 * rng.standard_normal(10) for s in shifts]
        change = late_early_change(z, None, [STEPS] * 5, FRACTION, LEVEL)
        covered += change.ci[0] <= 0.5 <= change.ci[1]
    assert_rate_at_least(covered, 150, LEVEL, TAIL, "coverage over seeds")


@pytest.mark.parametrize(
    "z, boot, steps, message",
    [
        ([[1.0, np.nan, 2.0, 3.0]], [np.ones((5, 4))], [[1, 2, 3, 4]], "finite"),
        ([], None, [], "one finite vector"),
        ([np.ones((2, 3))], [np.ones((5, 3))], [[1, 2, 3]], "one finite vector"),
        ([[1.0, 2.0, 3.0]], None, [[1, 2, 3]], "fewer than 2"),
        ([[1.0, 2.0, 3.0]], [np.ones((5, 4))], [[1, 2, 3]], r"boot must be \[n_resamples, 3\]"),
        ([[1.0, 2.0, 3.0]], [np.r_[np.ones((1, 3)), np.full((4, 3), np.nan)]], [[1, 2, 3]], "fewer than 2"),
        ([[1.0]], [np.ones((5, 1))], [[1]], "at least 2 checkpoints"),
        ([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], None, [[1, 2, 3], [1, 2, 3]], "steps"),
        ([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], None, [[1, 2, 3], [1, 2]], "steps"),
    ],
)
def test_bad_input_is_refused(z, boot, steps, message):
    """Non-finite z, no seed, a matrix per seed, a single seed without (or with mis-shaped, or
    all-NaN) bootstrap rows, one checkpoint, and steps that do not match z: ValueError."""
    with pytest.raises(ValueError, match=message):
        late_early_change(z, boot, steps, FRACTION, LEVEL)
