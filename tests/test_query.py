"""dse.query: Pareto front vs brute force, filters, knee point, hypervolume and its history."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from dse.query import (
    hypervolume,
    hypervolume_history,
    knee_point,
    nondominated_mask,
    pareto_front,
)


def _brute_front(F: np.ndarray) -> np.ndarray:
    """O(n^2) definition: no other row is <= everywhere and < somewhere (minimisation)."""
    keep = np.zeros(len(F), dtype=bool)
    for i in range(len(F)):
        if np.isnan(F[i]).any():
            continue
        ok = ~np.isnan(F).any(axis=1)
        dominated = ok & np.all(F <= F[i], axis=1) & np.any(F < F[i], axis=1)
        keep[i] = not dominated.any()
    return keep


def _frame(rng: np.random.Generator, n: int = 300) -> pd.DataFrame:
    # integer-valued objectives make ties and duplicates common
    df = pd.DataFrame(
        {
            "design_id": [f"d{i}" for i in range(n)],
            "status": rng.choice(["done", "done", "done", "failed", "queued"], n),
            "done_seq": pd.array(np.arange(1, n + 1), dtype="Int64"),
            "a": rng.integers(0, 8, n).astype(float),
            "b": rng.integers(0, 8, n).astype(float),
            "c": rng.random(n),
            "d": rng.integers(0, 4, n).astype(float),
            "hw.device": rng.choice(["reram", "pcm"], n),
        }
    )
    df.loc[rng.random(n) < 0.03, "b"] = np.nan
    return df


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pareto_front_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    df = _frame(rng)
    names = ["a", "b", "c", "d"]
    for k in (1, 2, 3, 4):
        for subset in itertools.combinations(names, k):
            dirs = {o: rng.choice(["min", "max"]) for o in subset}
            got = pareto_front(df, dirs)
            done = df[df["status"] == "done"]
            F = done[list(subset)].to_numpy() * np.array(
                [1 if d == "min" else -1 for d in dirs.values()]
            )
            want = set(done["design_id"][_brute_front(F)])
            assert set(got["design_id"]) == want, (subset, dirs)
            first, d0 = subset[0], dirs[subset[0]]
            assert (
                got[first].is_monotonic_increasing
                if d0 == "min"
                else got[first].is_monotonic_decreasing
            )


def test_nondominated_mask_keeps_duplicates_and_drops_nan():
    F = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [np.nan, 0.0], [0.5, np.nan]])
    assert nondominated_mask(F).tolist() == [True, True, True, False, False, False]
    assert nondominated_mask(np.empty((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match="2-D"):
        nondominated_mask(np.ones(3))


def test_constraints_and_where_filter_before_dominance():
    df = pd.DataFrame(
        {
            "status": ["done"] * 7 + ["failed"],
            "acc": [0.99, 0.95, 0.90, 0.80, 0.97, 0.85, 0.98, 1.0],
            "energy": [10.0, 5.0, 2.0, 1.0, 6.0, 3.0, 11.0, 0.1],
            "hw.device": ["reram", "pcm", "reram", "reram", "pcm", "pcm", "reram", "pcm"],
        }
    )
    obj = {"acc": "max", "energy": "min"}
    # row 5 is dominated by row 2, row 6 by row 0; the failed row 7 never counts
    assert set(pareto_front(df, obj).index) == {0, 1, 2, 3, 4}
    # row 0 infeasible -> row 6, which only row 0 dominated, joins the front
    assert set(pareto_front(df, obj, constraints=["acc <= 0.985"]).index) == {1, 2, 3, 4, 6}
    # where: only pcm designs compete, so row 5 (dominated by a reram design) is optimal
    assert set(pareto_front(df, obj, where="`hw.device` == 'pcm' and energy < 100").index) == {
        1,
        4,
        5,
    }
    assert set(pareto_front(df, obj, where="hw.device in ['reram']").index) == {0, 2, 3}
    both = pareto_front(df, obj, constraints=["acc <= 0.985"], where="hw.device == 'reram'")
    assert set(both.index) == {2, 3, 6}
    # a constraint on a missing (NaN) value makes that design infeasible
    df.loc[0, "acc"] = np.nan
    assert (
        0 not in pareto_front(df, {"energy": "min", "acc": "max"}, constraints=["acc >= 0.5"]).index
    )


@pytest.mark.parametrize(
    "where",
    [
        "__import__('os').system('echo pwned')",
        "acc.__class__ == 1",
        "open('x')",
        "[x for x in acc]",
        "acc[0] > 1",
        "lambda: 1",
    ],
)
def test_unsafe_where_is_rejected(where):
    df = pd.DataFrame({"status": ["done"], "acc": [0.9], "energy": [1.0]})
    with pytest.raises(ValueError, match="not allowed|cannot parse"):
        pareto_front(df, {"acc": "max"}, where=where)


def test_bad_objectives_and_names_are_clear():
    df = pd.DataFrame({"status": ["done"], "acc": [0.9], "energy": [1.0], "tag": ["x"]})
    with pytest.raises(
        ValueError, match=r"unknown objective 'latency'; known columns: status, acc"
    ):
        pareto_front(df, {"latency": "min"})
    with pytest.raises(ValueError, match="allowed: min, max"):
        pareto_front(df, {"acc": "up"})
    with pytest.raises(ValueError, match="not numeric"):
        pareto_front(df, {"tag": "min"})
    with pytest.raises(ValueError, match="unknown name 'area'; known names: acc, energy"):
        pareto_front(df, {"acc": "max"}, where="area < 3")
    with pytest.raises(ValueError, match="must compare columns"):
        pareto_front(df, {"acc": "max"}, where="3 + 4")
    with pytest.raises(ValueError, match="must give true/false"):
        pareto_front(df, {"acc": "max"}, where="energy * 2")


def test_knee_point_on_known_front():
    # convex 2-D front with an obvious bend at (0.1, 0.1)
    pts = [(0.0, 1.0), (0.05, 0.5), (0.1, 0.1), (0.5, 0.05), (1.0, 0.0), (0.3, 0.08)]
    df = pd.DataFrame(pts, columns=["e", "l"])
    knee = knee_point(df, {"e": "min", "l": "min"})
    assert (knee["e"], knee["l"]) == (0.1, 0.1)
    # units do not matter (normalised) and max objectives are handled by sign
    scaled = pd.DataFrame({"e": df["e"] * 1000.0, "acc": 1.0 - df["l"]})
    knee2 = knee_point(scaled, {"e": "min", "acc": "max"})
    assert knee2.name == knee.name
    # 3-D: points on the simplex x+y+z=1 plus one bulging towards the ideal point
    simplex = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0), (0.2, 0.3, 0.5)]
    df3 = pd.DataFrame(simplex + [(0.2, 0.2, 0.2)], columns=["x", "y", "z"], dtype=float)
    assert knee_point(df3, {"x": "min", "y": "min", "z": "min"}).name == 5


def test_hypervolume_hand_computed_2d():
    # minimise both; points (1,3), (2,2), (3,1), dominated (3,3); ref (4,4)
    # union of boxes = 3*1 + 2*1 + 1*1 staircase: (4-1)*(4-3) + (4-2)*(3-2) + (4-3)*(2-1) = 3+2+1
    df = pd.DataFrame(
        {
            "status": ["done", "done", "done", "done", "failed"],
            "f1": [1.0, 2.0, 3.0, 3.0, np.nan],
            "f2": [3.0, 2.0, 1.0, 3.0, np.nan],
        }
    )
    hv = hypervolume(df, {"f1": "min", "f2": "min"}, ref_point=[4.0, 4.0])
    assert hv.value == pytest.approx(6.0) and hv.ref_point == {"f1": 4.0, "f2": 4.0}
    # the same front as maximisation of -f2 with the ref point in the objective's own sign
    df["g"] = -df["f2"]
    hv_max = hypervolume(df, {"f1": "min", "g": "max"}, ref_point={"f1": 4.0, "g": -4.0})
    assert float(hv_max) == pytest.approx(6.0)
    # default ref: nadir (3, 3) + 10% of range (2) -> (3.2, 3.2)
    hv_def = hypervolume(df, {"f1": "min", "f2": "min"})
    assert hv_def.ref_point == pytest.approx({"f1": 3.2, "f2": 3.2})
    want = (3.2 - 1) * (3.2 - 3) + (3.2 - 2) * (3 - 2) + (3.2 - 3) * (2 - 1)
    assert hv_def.value == pytest.approx(want)
    # a constraint removes (1,3): left (2,2) -> 2*2 and (3,1) -> (4-3)*(2-1) = 5
    hv_c = hypervolume(df, {"f1": "min", "f2": "min"}, ref_point=[4, 4], constraints=["f1 >= 1.5"])
    assert hv_c.value == pytest.approx(5.0)
    with pytest.raises(ValueError, match="ref_point has 1 values for 2 objectives"):
        hypervolume(df, {"f1": "min", "f2": "min"}, ref_point=[4.0])


def test_hypervolume_history_is_monotone_and_ends_at_total():
    rng = np.random.default_rng(3)
    n = 400
    x = rng.random((n, 3))
    df = pd.DataFrame(
        {
            "status": np.where(rng.random(n) < 0.1, "failed", "done"),
            "done_seq": rng.permutation(n) + 1,
            "a": x[:, 0],
            "b": 1 - x[:, 1],
            "c": x[:, 2],
        }
    )
    df.loc[df["status"] == "failed", ["a", "b", "c"]] = np.nan
    obj = {"a": "min", "b": "max", "c": "min"}
    hist = hypervolume_history(df, obj, step=37)
    assert list(hist.columns) == ["evaluations", "hypervolume"]
    assert hist["evaluations"].iloc[-1] == n and hist["evaluations"].iloc[0] == 37
    assert (np.diff(hist["hypervolume"]) >= -1e-12).all()
    total = hypervolume(df, obj)
    assert hist["hypervolume"].iloc[-1] == pytest.approx(total.value)
    assert hist.attrs["ref_point"] == pytest.approx(total.ref_point)
    # the value at k evaluations equals the hypervolume of the first k finished designs
    k = int(hist["evaluations"].iloc[3])
    first_k = df[df["done_seq"] <= k]
    assert hist["hypervolume"].iloc[3] == pytest.approx(
        hypervolume(first_k, obj, ref_point=total.ref_point).value
    )


def _tracker_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "design_id": [f"d{i}" for i in range(n)],
            "status": ["done"] * n,
            "done_seq": np.arange(n),
            "x": rng.uniform(0, 1, n),
            "f1": rng.uniform(0, 4, n),
            "f2": rng.uniform(-3, 1, n),
        }
    )


@pytest.mark.parametrize("stated", [None, {"f1": 5.0, "f2": -4.0}])
def test_tracker_watches_the_number_status_prints(stated):
    """The stagnation stop's hypervolume equals dse.query.hypervolume (what `dse status`
    prints) after every batch: constraints on params + metrics, the same reference point."""
    from dse.query import HypervolumeTracker

    rng = np.random.default_rng(3)
    df = _tracker_frame(rng, 120)
    objectives, constraints = {"f1": "min", "f2": "max"}, ["x <= 0.6", "f1 >= 0.5"]
    tracker = HypervolumeTracker(objectives, constraints, stated)
    for end in range(10, 121, 10):
        batch = df.iloc[end - 10 : end]
        points = [({"x": r.x}, {"f1": r.f1, "f2": r.f2}) for r in batch.itertuples()]
        value = tracker.add(points, end)
        expected = hypervolume(df.iloc[:end], objectives, stated, constraints)
        assert value == pytest.approx(expected.value, rel=1e-12)
        assert dict(zip(["f1", "f2"], tracker.ref * tracker.signs, strict=True)) == pytest.approx(
            expected.ref_point
        )
    unconstrained = hypervolume(df, objectives, stated)
    assert unconstrained.value > tracker.value  # the infeasible designs were left out


def test_tracker_stagnation_uses_todays_reference_point():
    """A first batch with a tight nadir: a later, wider design must count as progress
    (a reference point fixed from the first batch scored it 0 and stopped the run)."""
    from dse.query import HypervolumeTracker

    t = HypervolumeTracker({"f1": "min", "f2": "min"}, window=5)
    t.add([({}, {"f1": 1.0, "f2": 1.0}), ({}, {"f1": 1.1, "f2": 1.1})], 2)
    for n in range(3, 10):
        t.add([({}, {"f1": 1.05, "f2": 1.05})], n)  # dominated: nothing new
    assert t.stagnated(window=5, tol=1e-6)
    t.add([({}, {"f1": 0.2, "f2": 30.0})], 10)  # beyond the first nadir in f2, better in f1
    assert not t.stagnated(window=5, tol=1e-6)
    assert len(t.snapshots) <= 3  # only what the window needs is kept
    unbounded = HypervolumeTracker({"f1": "min", "f2": "min"})  # no stagnation rule
    for n in range(1, 50):
        unbounded.add([({}, {"f1": 1.0 / n, "f2": float(n)})], n)  # a new front each time
    assert len(unbounded.snapshots) == 1
