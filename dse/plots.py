"""Static figures for the study report (PNG bytes, matplotlib Agg).

Why the object-oriented ``Figure`` + ``FigureCanvasAgg`` API instead of
``pyplot``: pyplot keeps global state and picks a GUI backend from the
environment; reports are written from CLIs, tests and Ray drivers, often
headless and sometimes from threads. A bare ``Figure`` rendered by the Agg
canvas needs no display, leaks no open figures and is safe to call repeatedly.

Every function here draws data it is given. Which designs are Pareto-optimal,
the knee and the hypervolume come from :mod:`dse.query`; this module never
decides dominance itself.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "axis_label",
    "wants_log",
    "breakdown_bars",
    "hypervolume_curve",
    "parallel_coordinates",
    "pareto_3d",
    "pareto_projections",
]

#: colours shared by every figure so a reader learns them once
PALETTE = {
    "all": "#b9c0c9",  # dominated / every evaluated design
    "front": "#1f5fa8",  # Pareto-optimal designs
    "front_edge": "#0b2f57",
    "knee": "#d1495b",  # the knee point
    "accent": "#edae49",
    "text": "#1d2733",
    "grid": "#e6e9ee",
}
#: categorical colours for breakdown parts (colour-blind friendly, Tol "muted")
PART_COLOURS = [
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#AA4499",
    "#DDDDDD",
]
DPI = 110


def axis_label(name: str, sense: str | None = None) -> str:
    """Objective label with its direction: ``energy_nj (min ↓)``."""
    if sense == "min":
        return f"{name}  (min \u2193)"
    if sense == "max":
        return f"{name}  (max \u2191)"
    return name


def _style(ax) -> None:
    ax.set_facecolor("white")
    ax.grid(True, color=PALETTE["grid"], linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9aa3ad")
    ax.tick_params(colors=PALETTE["text"], labelsize=8)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _values(frame: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)


def wants_log(values: np.ndarray) -> bool:
    """True when positive values span more than three decades.

    Energy and area of CIM designs routinely span 10^3-10^5 between a tiny MLP
    on 64x64 arrays and a ResNet on 512x512; on a linear axis the whole front
    collapses into one corner.
    """
    v = values[np.isfinite(values)]
    return bool(v.size >= 2 and np.all(v > 0) and v.max() / v.min() > 1e3)


def _maybe_log(ax, axis: str, values: np.ndarray) -> None:
    if wants_log(values):
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def pareto_projections(
    frame: pd.DataFrame,
    front: pd.DataFrame,
    objectives: Mapping[str, str],
    knee: pd.Series | None = None,
    infeasible: pd.DataFrame | None = None,
) -> bytes:
    """Every pair of objectives: all designs in grey, the front highlighted.

    ``frame`` holds every finished design, ``front`` the Pareto-optimal rows
    (from :func:`dse.query.pareto_front`), ``infeasible`` the finished designs
    violating a constraint (drawn as crosses: they explain gaps in the front).
    With k objectives the grid has k(k-1)/2 panels; front points that look
    dominated in one panel are non-dominated in the full k-dimensional space.
    """
    names = list(objectives)
    if len(names) < 2:
        raise ValueError(f"pareto_projections needs at least 2 objectives, got {names}")
    pairs = list(combinations(names, 2))
    ncols = min(3, len(pairs))
    nrows = math.ceil(len(pairs) / ncols)
    size = (7.0, 4.6) if len(pairs) == 1 else (4.6 * ncols, 4.0 * nrows)
    fig = Figure(figsize=size, layout="constrained")
    for i, (a, b) in enumerate(pairs):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        _style(ax)
        ax.scatter(
            _values(frame, a),
            _values(frame, b),
            s=12,
            c=PALETTE["all"],
            alpha=0.7,
            linewidths=0,
            label=f"all designs ({len(frame)})",
        )
        if infeasible is not None and len(infeasible):
            ax.scatter(
                _values(infeasible, a),
                _values(infeasible, b),
                s=14,
                marker="x",
                c="#c9a27a",
                linewidths=0.8,
                label=f"violates a constraint ({len(infeasible)})",
            )
        fa, fb = _values(front, a), _values(front, b)
        order = np.argsort(fa, kind="stable")
        if len(pairs) == 1 and front.shape[0] > 1:
            # With exactly two objectives the front's attainment boundary is a
            # staircase. Walking along increasing a, the corner between two
            # neighbours lies on the dominated side: after the step when a is
            # minimised, before it when a is maximised.
            where = "post" if objectives[a] == "min" else "pre"
            ax.step(fa[order], fb[order], where=where, color=PALETTE["front"], lw=1, alpha=0.6)
        ax.scatter(
            fa,
            fb,
            s=26,
            c=PALETTE["front"],
            edgecolors=PALETTE["front_edge"],
            linewidths=0.5,
            label=f"Pareto front ({len(front)})",
            zorder=3,
        )
        if knee is not None:
            ax.scatter(
                [float(knee[a])],
                [float(knee[b])],
                s=140,
                marker="*",
                c=PALETTE["knee"],
                edgecolors="white",
                linewidths=0.8,
                label="knee point",
                zorder=4,
            )
        _maybe_log(ax, "x", _values(frame, a))
        _maybe_log(ax, "y", _values(frame, b))
        ax.set_xlabel(axis_label(a, objectives[a]), fontsize=9, color=PALETTE["text"])
        ax.set_ylabel(axis_label(b, objectives[b]), fontsize=9, color=PALETTE["text"])
        if i == 0:
            ax.legend(fontsize=8, frameon=False, loc="best")
    return _png(fig)


def pareto_3d(
    frame: pd.DataFrame,
    front: pd.DataFrame,
    objectives: Mapping[str, str],
    knee: pd.Series | None = None,
) -> bytes:
    """3-D scatter of the first three objectives (a 4th, if any, colours the front)."""
    import mpl_toolkits.mplot3d  # noqa: F401  (registers the "3d" projection)

    names = list(objectives)
    if len(names) < 3:
        raise ValueError(f"pareto_3d needs at least 3 objectives, got {names}")
    a, b, c = names[:3]
    fig = Figure(figsize=(7.5, 6.2), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    ax.scatter(
        _values(frame, a),
        _values(frame, b),
        _values(frame, c),
        s=8,
        c=PALETTE["all"],
        alpha=0.35,
        depthshade=False,
        label=f"all designs ({len(frame)})",
    )
    colour_kw: dict = {"c": PALETTE["front"]}
    if len(names) > 3:
        colour_kw = {"c": _values(front, names[3]), "cmap": "viridis"}
    sc = ax.scatter(
        _values(front, a),
        _values(front, b),
        _values(front, c),
        s=28,
        edgecolors=PALETTE["front_edge"],
        linewidths=0.4,
        depthshade=False,
        label=f"Pareto front ({len(front)})",
        **colour_kw,
    )
    if len(names) > 3:
        cb = fig.colorbar(sc, ax=ax, shrink=0.6, pad=0.08)
        cb.set_label(axis_label(names[3], objectives[names[3]]), fontsize=9)
    if knee is not None:
        ax.scatter(
            [float(knee[a])],
            [float(knee[b])],
            [float(knee[c])],
            s=180,
            marker="*",
            c=PALETTE["knee"],
            edgecolors="white",
            depthshade=False,
            label="knee point",
        )
    ax.set_xlabel(axis_label(a, objectives[a]), fontsize=9)
    ax.set_ylabel(axis_label(b, objectives[b]), fontsize=9)
    ax.set_zlabel(axis_label(c, objectives[c]), fontsize=9)
    ax.tick_params(labelsize=7)
    ax.view_init(elev=22, azim=-58)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return _png(fig)


def _encode_column(values: pd.Series, log: bool) -> tuple[np.ndarray, list[str], list[float]]:
    """Map a column onto [0, 1]; return (positions, tick labels, tick positions).

    Categorical (non-numeric) columns get evenly spaced levels in sorted order,
    so "reram" and "sram" are distinct heights rather than NaN. Log-scaled
    params are normalised in log space, as the optimizer sampled them.
    """
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().sum() == values.notna().sum() and values.notna().any():
        v = num.to_numpy(dtype=float)
        use_log = log and np.all(v[np.isfinite(v)] > 0)
        t = np.log10(v) if use_log else v
        lo, hi = np.nanmin(t), np.nanmax(t)
        pos = np.full_like(t, 0.5) if hi == lo else (t - lo) / (hi - lo)
        lo_v, hi_v = np.nanmin(v), np.nanmax(v)
        if hi == lo:
            return pos, [_fmt(lo_v)], [0.5]
        return pos, [_fmt(lo_v), _fmt(hi_v)], [0.0, 1.0]
    levels = sorted({str(x) for x in values.dropna()})
    index = {lv: i for i, lv in enumerate(levels)}
    denom = max(len(levels) - 1, 1)
    pos = np.array([np.nan if pd.isna(x) else index[str(x)] / denom for x in values], dtype=float)
    if len(levels) == 1:
        pos = np.where(np.isnan(pos), np.nan, 0.5)
        return pos, levels, [0.5]
    return pos, levels, [i / denom for i in range(len(levels))]


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-2:
        return f"{x:.2e}"
    return f"{x:.3g}"


def parallel_coordinates(
    front: pd.DataFrame,
    params: Sequence[str],
    objectives: Mapping[str, str],
    *,
    log_params: Sequence[str] = (),
    knee_id: str | None = None,
) -> bytes:
    """Parallel coordinates of the Pareto designs: params then objectives.

    Each axis is normalised to [0, 1] over the front (its min and max printed at
    the ends); lines are coloured by the first objective so trade-offs show
    as crossing bundles. Params constant over the front are dropped (they carry
    no information and crowd the plot); their values are listed in the table.
    """
    obj = list(objectives)
    keep = [p for p in params if p in front and front[p].nunique(dropna=True) > 1]
    cols = keep + obj
    n = len(cols)
    fig = Figure(figsize=(min(max(8.0, 0.62 * n + 2.5), 15.0), 5.0), layout="constrained")
    ax = fig.add_subplot()
    positions = np.empty((len(front), n))
    for j, col in enumerate(cols):
        pos, labels, ticks = _encode_column(front[col], col in set(log_params))
        positions[:, j] = pos
        for lab, t in zip(labels, ticks, strict=True):
            ax.text(
                j + 0.04,
                t,
                lab,
                fontsize=6.5,
                va="center",
                ha="left",
                color="#3d4751",
                zorder=6,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            )
    colour_by = _values(front, obj[0])
    finite = colour_by[np.isfinite(colour_by)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    norm = (colour_by - lo) / (hi - lo) if hi > lo else np.full_like(colour_by, 0.5)
    cm = colormaps["viridis_r"] if objectives[obj[0]] == "max" else colormaps["viridis"]
    xs = np.arange(n)
    ids = front["design_id"].astype(str).to_numpy() if "design_id" in front else None
    badness = norm if objectives[obj[0]] == "min" else 1.0 - norm
    for i in np.argsort(-np.nan_to_num(badness, nan=0.5)):  # best drawn last, on top
        is_knee = ids is not None and knee_id is not None and ids[i] == knee_id
        if is_knee:
            continue
        ax.plot(
            xs, positions[i], color=cm(float(np.nan_to_num(norm[i], nan=0.5))), lw=1.0, alpha=0.55
        )
    if ids is not None and knee_id is not None and knee_id in set(ids):
        i = int(np.flatnonzero(ids == knee_id)[0])
        ax.plot(xs, positions[i], color=PALETTE["knee"], lw=2.6, label="knee point", zorder=5)
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(0, 1.08))
    for j in range(n):
        ax.axvline(j, color="#6b7580" if cols[j] in objectives else "#aab2bb", lw=1.0, zorder=0)
    if keep:
        ax.axvspan(len(keep) - 0.5, n - 0.5, color="#f3f6fa", zorder=-1)
    ax.set_xticks(xs)
    ax.set_xticklabels(
        [axis_label(c, objectives.get(c)) if c in objectives else c for c in cols],
        rotation=35,
        ha="right",
        fontsize=8,
    )
    ax.set_xlim(-0.3, n - 0.4)
    ax.set_ylim(-0.04, 1.04)
    ax.set_yticks([0, 0.5, 1])
    ax.set_ylabel("normalised over the front", fontsize=9)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    sm = ScalarMappable(norm=Normalize(lo, hi), cmap=cm)
    cb = fig.colorbar(sm, ax=ax, shrink=0.8, pad=0.01)
    cb.set_label(axis_label(obj[0], objectives[obj[0]]), fontsize=9)
    return _png(fig)


def hypervolume_curve(
    history: pd.DataFrame, *, x: str, y: str, ref_point: Mapping[str, float] | None = None
) -> bytes:
    """Hypervolume of the running front against completed evaluations."""
    fig = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    _style(ax)
    xs = _values(history, x)
    ys = _values(history, y)
    ax.step(xs, ys, where="post", color=PALETTE["front"], lw=1.8)
    ax.fill_between(xs, ys, step="post", color=PALETTE["front"], alpha=0.08)
    if len(xs):
        ax.scatter([xs[-1]], [ys[-1]], s=30, color=PALETTE["front"], zorder=3)
        ax.annotate(
            f"{ys[-1]:.4g}",
            (xs[-1], ys[-1]),
            textcoords="offset points",
            xytext=(-6, 8),
            ha="right",
            fontsize=9,
            color=PALETTE["text"],
        )
    ax.set_xlabel("completed evaluations", fontsize=9)
    ax.set_ylabel("hypervolume", fontsize=9)
    if ref_point:
        ref = ", ".join(f"{k}={_fmt(float(v))}" for k, v in ref_point.items())
        ax.set_title(f"reference point: {ref}", fontsize=8, color="#55606b", loc="left")
    ax.set_ylim(bottom=0)
    return _png(fig)


def breakdown_bars(
    designs: pd.DataFrame,
    labels: Sequence[str],
    groups: Mapping[str, tuple[Sequence[str], str]],
) -> bytes:
    """Stacked bars: one panel per group (energy, area), one bar per chosen design.

    ``groups`` maps a panel title to (columns, unit). Each column is one part
    (``energy.adc_nj`` → "adc"); a part keeps its colour across panels so the
    ADC's share of energy and of area can be compared at a glance.
    """
    panels = [(title, list(cols), unit) for title, (cols, unit) in groups.items() if cols]
    if not panels:
        raise ValueError("breakdown_bars needs at least one group with columns")
    parts: list[str] = []
    for _, cols, _ in panels:
        for c in cols:
            p = _part_name(c)
            if p not in parts:
                parts.append(p)
    colour = {p: PART_COLOURS[i % len(PART_COLOURS)] for i, p in enumerate(parts)}
    fig = Figure(
        figsize=(max(5.0, 1.0 + 1.3 * len(labels)) * len(panels) + 1.8, 4.4), layout="constrained"
    )
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    x = np.arange(len(labels))
    for ax, (title, cols, unit) in zip(axes, panels, strict=True):
        _style(ax)
        ax.grid(False, axis="x")
        bottom = np.zeros(len(labels))
        totals = np.nansum(np.vstack([_values(designs, c) for c in cols]), axis=0)
        for c in cols:
            v = np.nan_to_num(_values(designs, c), nan=0.0)
            ax.bar(
                x,
                v,
                bottom=bottom,
                color=colour[_part_name(c)],
                width=0.62,
                edgecolor="white",
                linewidth=0.6,
                label=_part_name(c),
            )
            bottom += v
        for xi, t in zip(x, totals, strict=True):
            ax.text(
                xi, t, _fmt(float(t)), ha="center", va="bottom", fontsize=8, color=PALETTE["text"]
            )
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=8, rotation=15 if len(labels) > 3 else 0)
        ax.set_ylabel(unit, fontsize=9)
        ax.set_title(title, fontsize=10, loc="left", color=PALETTE["text"])
        ax.margins(y=0.12)
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(
        list(handles.values()),
        list(handles.keys()),
        loc="outside right upper",
        fontsize=8,
        frameon=False,
        title="part",
        title_fontsize=8,
    )
    return _png(fig)


def _part_name(column: str) -> str:
    """``energy.adc_nj`` → ``adc``; ``area.array_mm2`` → ``array``."""
    part = column.split(".", 1)[1] if "." in column else column
    for suffix in ("_nj", "_mm2", "_pj", "_uj", "_um2", "_us"):
        if part.endswith(suffix):
            return part[: -len(suffix)]
    return part
