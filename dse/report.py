"""The study report: one static, offline HTML file plus the PNGs it shows.

Why static and self-contained: reports are read on laptops, attached to
e-mails and opened on air-gapped lab machines long after the study ran. The
HTML therefore references nothing outside itself: figures are embedded as
base64 PNGs (and also written next to it, for slides and papers), the styles
are inline, and the only script is small and inline (a table sorter and a
drag-to-rotate 3-D canvas). No CDN, no fonts, no network.

Which designs are Pareto-optimal, the knee point and the hypervolume all come
from :mod:`dse.query`; this module only lays them out, so ``dse pareto`` and
the report can never disagree.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dse import plots
from dse.store import META_COLUMNS

__all__ = ["ReportError", "write_report", "report_from_store", "META_COLUMNS"]

_BREAKDOWNS = (
    ("energy", "_nj", "Energy per inference", "nJ"),
    ("area", "_mm2", "Area", "mm²"),
    ("latency", "_us", "Latency per inference (layer by layer)", "µs"),
)
#: breakdown-named metrics that are another total, not a part of the stack
_NOT_PARTS = frozenset({"latency.pipelined_us"})
_VECTOR_ELEMENT = re.compile(r"^(?P<base>.+)_(?P<i>\d+)$")


class ReportError(ValueError):
    """The frame or spec cannot be reported (names what is missing)."""


@dataclass
class _Figure:
    key: str
    title: str
    caption: str
    png: bytes


@dataclass
class _Chosen:
    label: str
    design_id: str
    why: str


@dataclass
class _Context:
    spec: Mapping[str, Any]
    objectives: dict[str, str]
    frame: pd.DataFrame
    done: pd.DataFrame
    front: pd.DataFrame
    params: list[str]
    log_params: list[str]
    knee: pd.Series | None
    ref_point: dict[str, float] | None
    hv: float | None
    hv_history: pd.DataFrame | None
    infeasible: pd.DataFrame | None = None
    chosen: list[_Chosen] = field(default_factory=list)
    figures: list[_Figure] = field(default_factory=list)


# --------------------------------------------------------------------------- query glue
# The only places that decide dominance, knee and hypervolume: dse.query.


def _query():
    from dse import query

    return query


def _pareto_front(
    frame: pd.DataFrame, objectives: dict[str, str], constraints: list[str]
) -> pd.DataFrame:
    return _query().pareto_front(frame, objectives, constraints=constraints, where=None)


def _knee(front: pd.DataFrame, objectives: dict[str, str]) -> pd.Series | None:
    if front.empty or len(objectives) < 2:
        return None
    return _query().knee_point(front, objectives)


def _hypervolume(
    frame: pd.DataFrame,
    objectives: dict[str, str],
    constraints: list[str],
    given: Mapping[str, float] | None,
) -> tuple[float | None, dict[str, float] | None, pd.DataFrame | None]:
    """(hypervolume, its reference point, history) — all from :mod:`dse.query`.

    The reference point is ``given`` ({objective: value}) when set, else
    query's default (nadir of all done designs + 10% of range),
    and is printed beside the value: hypervolumes compare only at one point.
    """
    if not (frame["status"].astype(str) == "done").any():
        return None, None, None
    q = _query()
    try:
        res = q.hypervolume(frame, objectives, ref_point=given, constraints=constraints)
    except ValueError as exc:  # e.g. no done design has every objective value
        if given:
            raise ReportError(f"ref_point {dict(given)!r}: {exc}") from None
        return None, None, None
    history = q.hypervolume_history(
        frame, objectives, ref_point=res.ref_point, constraints=constraints
    )
    return float(res.value), dict(res.ref_point), history


# --------------------------------------------------------------------------- helpers


def _params(frame: pd.DataFrame, spec: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(param columns of the frame in space order, those sampled on a log scale).

    The frame alone cannot tell params from metrics, so this asks the study's
    search space: the saved spec's canonical ``space`` parsed by
    :class:`search_spaces.SearchSpace`. A store saved without one (older versions
    left an evaluator's default space out) falls back to the frame's namespaced
    CIM keys (``dnn.*``, ``hw.*``, ``train.*``).
    """
    space = _resolve_space(spec)
    if space is not None:
        names = [p.name for p in space.params if p.name in frame.columns]
        logs = [p.name for p in space.params if getattr(p, "log", False) and p.name in names]
        return names, logs
    raw = spec.get("space") or {}
    names: list[str] = []
    for name in raw:
        if name in frame.columns:
            names.append(name)
        else:
            names.extend(
                c
                for c in frame.columns
                if (m := _VECTOR_ELEMENT.match(c)) and m.group("base") == name
            )
    if not raw:
        names = [c for c in frame.columns if c.split(".", 1)[0] in ("dnn", "hw", "train")]
    logs = []
    for p in names:
        m = _VECTOR_ELEMENT.match(p)
        cfg = raw.get(p) or (raw.get(m.group("base")) if m else None)
        if isinstance(cfg, Mapping) and cfg.get("log"):
            logs.append(p)
    return names, logs


def _resolve_space(spec: Mapping[str, Any]) -> Any | None:
    """The saved spec's space (``ResolvedStudy.saved_spec`` writes the canonical one).

    The evaluator is never built here: a report is made from the store alone.
    """
    if not spec.get("space"):
        return None  # a store written before the canonical space was saved
    from search_spaces.space import SearchSpace

    try:
        return SearchSpace.from_dict(spec["space"])
    except ValueError:  # a report shows what it can; _params falls back to the spec's keys
        return None


def _breakdown_columns(frame: pd.DataFrame) -> dict[str, tuple[list[str], str]]:
    groups: dict[str, tuple[list[str], str]] = {}
    for prefix, suffix, title, unit in _BREAKDOWNS:
        cols = [
            c
            for c in frame.columns
            if c.startswith(prefix + ".")
            and c.endswith(suffix)
            and c not in _NOT_PARTS
            and pd.to_numeric(frame[c], errors="coerce").notna().any()
        ]
        if cols:
            groups[title] = (cols, unit)
    return groups


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if x == 0:
            return "0"
        if x.is_integer() and abs(x) < 1e6:
            return f"{int(x):,}"
        if abs(x) >= 1e5 or abs(x) < 1e-3:
            return f"{x:.3e}"
        return f"{x:.4g}"
    return str(v)


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --------------------------------------------------------------------------- assembly


def _choose(ctx: _Context, chosen: list[str] | None) -> list[_Chosen]:
    """The designs whose breakdowns are shown: the knee and each objective's extreme."""
    if chosen:
        known = set(ctx.done["design_id"].astype(str))
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise ReportError(
                f"chosen design ids {unknown} are not finished designs of this study; "
                f"pick from the front table (e.g. {', '.join(list(ctx.front['design_id'])[:3])})"
            )
        return [_Chosen(f"#{i + 1}", c, "chosen") for i, c in enumerate(chosen)]
    out: list[_Chosen] = []
    if ctx.knee is not None:
        out.append(_Chosen("knee", str(ctx.knee["design_id"]), "knee point of the front"))
    for obj, sense in ctx.objectives.items():
        vals = pd.to_numeric(ctx.front[obj], errors="coerce")
        if vals.notna().sum() == 0:
            continue
        idx = vals.idxmin() if sense == "min" else vals.idxmax()
        did = str(ctx.front.loc[idx, "design_id"])
        word = "lowest" if sense == "min" else "highest"
        if any(c.design_id == did for c in out):
            for c in out:
                if c.design_id == did:
                    c.why += f"; {word} {obj}"
            continue
        out.append(_Chosen(f"best {obj}", did, f"{word} {obj} on the front"))
    return out


_MAX_PARALLEL_PARAMS = 16  # beyond this the axes of a 1100-px-wide figure become unreadable


def _parallel_params(ctx: _Context) -> tuple[list[str], list[str]]:
    """(params to draw, numeric params left out) for the parallel-coordinates plot.

    Every categorical param that varies over the front is kept (device, model and
    method choices are what a CIM reader looks for). Numeric ones are kept too
    unless that makes more than ``_MAX_PARALLEL_PARAMS`` axes (a 30-variable
    ZDT1 study); then those most monotonically related to some objective over
    the finished designs (largest |Spearman ρ|) are kept, in space order.
    """
    varying = [p for p in ctx.params if ctx.front[p].nunique(dropna=True) > 1]
    numeric = [p for p in varying if pd.api.types.is_numeric_dtype(ctx.done[p])]
    categorical = [p for p in varying if p not in numeric]
    room = max(_MAX_PARALLEL_PARAMS - len(categorical), 0)
    if len(numeric) <= room:
        return varying, []
    ranks = ctx.done[numeric + list(ctx.objectives)].apply(pd.to_numeric, errors="coerce").rank()
    corr = ranks.corr().loc[numeric, list(ctx.objectives)].abs().max(axis=1).fillna(0.0)
    keep = set(corr.sort_values(ascending=False, kind="stable").index[:room])
    return [p for p in varying if p in keep or p in categorical], [
        p for p in numeric if p not in keep
    ]


def _build_figures(ctx: _Context) -> None:
    obj = ctx.objectives
    if len(obj) >= 2 and not ctx.front.empty:
        ctx.figures.append(
            _Figure(
                "pareto_2d",
                "Pareto front — 2-D projections",
                "Every pair of objectives. Grey: all finished designs (crosses: those "
                "violating a constraint); blue: the Pareto front in the full objective space "
                "(a front point may look dominated in a single projection); red star: the "
                "knee point.",
                plots.pareto_projections(
                    ctx.done, ctx.front, obj, ctx.knee, infeasible=ctx.infeasible
                ),
            )
        )
    if len(obj) >= 3 and not ctx.front.empty:
        extra = " Colour of front points: the 4th objective." if len(obj) > 3 else ""
        ctx.figures.append(
            _Figure(
                "pareto_3d",
                "Pareto front — 3-D view",
                f"First three objectives ({', '.join(list(obj)[:3])}).{extra}",
                plots.pareto_3d(ctx.done, ctx.front, obj, ctx.knee),
            )
        )
    if len(ctx.front) >= 2:
        shown, dropped = _parallel_params(ctx)
        note = ""
        if dropped:
            note = (
                f" {len(dropped)} more numeric params vary over the front but are left out "
                "to keep the axes legible (those with the weakest rank correlation, |Spearman "
                f"ρ|, with any objective over the finished designs): {', '.join(dropped)}."
            )
        ctx.figures.append(
            _Figure(
                "parallel",
                "Parallel coordinates of the Pareto designs",
                "Params (left) then objectives (shaded, right), each normalised to [0, 1] "
                "over the front with its range printed at the ends; params constant over "
                "the front are omitted. Colour: the first objective (dark = better). "
                "Red: the knee point." + note,
                plots.parallel_coordinates(
                    ctx.front,
                    shown,
                    obj,
                    log_params=ctx.log_params,
                    knee_id=None if ctx.knee is None else str(ctx.knee["design_id"]),
                ),
            )
        )
    if ctx.hv_history is not None and len(ctx.hv_history):
        x, y = ctx.hv_history.columns[:2]
        ctx.figures.append(
            _Figure(
                "hypervolume",
                "Hypervolume over evaluations",
                "Hypervolume dominated by the running front (feasible done designs) as "
                "evaluations complete (done or failed, in completion order), against the "
                "fixed reference point stated in the summary.",
                plots.hypervolume_curve(ctx.hv_history, x=x, y=y, ref_point=ctx.ref_point),
            )
        )
    groups = _breakdown_columns(ctx.done)
    if groups and ctx.chosen:
        rows = ctx.done.set_index(ctx.done["design_id"].astype(str)).loc[
            [c.design_id for c in ctx.chosen]
        ]
        ctx.figures.append(
            _Figure(
                "breakdown",
                "Energy, area and latency breakdown of chosen designs",
                "Stacked by part, from the evaluator's energy.*_nj, area.*_mm2 and "
                "latency.*_us metrics; totals on top.",
                plots.breakdown_bars(rows, [c.label for c in ctx.chosen], groups),
            )
        )


_CSS = """
:root{--ink:#1d2733;--mute:#5b6672;--line:#e3e7ec;--blue:#1f5fa8;--bg:#f6f8fb;--knee:#d1495b}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#14263d;color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 4px;font-size:26px;font-weight:600;letter-spacing:.2px}
header p{margin:0;color:#b8c6d8;font-size:13px}
nav{margin-top:14px;display:flex;flex-wrap:wrap;gap:6px}
nav a{color:#dbe6f3;text-decoration:none;font-size:12.5px;padding:3px 10px;border:1px solid #34506f;border-radius:12px}
nav a:hover{background:#223c5c}
main{max-width:1200px;margin:0 auto;padding:24px 40px 60px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:20px 24px;margin:0 0 22px}
h2{font-size:17px;margin:0 0 12px;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px;margin:0 0 6px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 14px;background:#fbfcfe}
.card .k{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.5px}
.card .v{font-size:20px;font-weight:600;margin-top:2px;font-variant-numeric:tabular-nums}
.card .s{color:var(--mute);font-size:12px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:12px 0 0}
dl.kv dt{color:var(--mute)}dl.kv dd{margin:0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
figure{margin:0}
figure img{display:block;max-width:100%;height:auto;margin:0 auto;border-radius:4px}
figcaption{color:var(--mute);font-size:13px;margin-top:8px}
.tablewrap{overflow-x:auto;border:1px solid var(--line);border-radius:6px;max-height:720px}
table{border-collapse:collapse;width:100%;font-size:12.5px;font-variant-numeric:tabular-nums}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);white-space:nowrap;text-align:right}
th{position:sticky;top:0;background:#eef2f7;font-weight:600}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:hover{background:#e2e9f2}
th.obj{background:#dfe9f6}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
td.t,th.t{text-align:left}
tbody tr:nth-child(even){background:#fafbfd}
tbody tr:hover{background:#eef4fb}
tr.knee td{background:#fdecee}
.badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:11px;background:var(--knee);color:#fff;margin-left:4px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;background:#f1f3f6;padding:1px 4px;border-radius:3px}
.note{color:var(--mute);font-size:13px}
h3.sub{font-size:14px;font-weight:600;margin:22px 0 6px;color:var(--mute)}
canvas#rot3d{display:block;max-width:100%;margin:0 auto;border:1px solid var(--line);border-radius:6px;cursor:grab;touch-action:none;background:#fff}
footer{color:var(--mute);font-size:12px;text-align:center;margin-top:10px}
"""

# Sorts the front table on a header click; numbers by their data-v value.
_SORTER_JS = """
document.querySelectorAll("table.sortable").forEach(function(t){
  var hs=t.tHead.rows[0].cells;
  Array.prototype.forEach.call(hs,function(th,col){
    th.addEventListener("click",function(){
      var asc=th.getAttribute("aria-sort")!=="ascending";
      Array.prototype.forEach.call(hs,function(h){h.removeAttribute("aria-sort");});
      th.setAttribute("aria-sort",asc?"ascending":"descending");
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      function key(r){var c=r.cells[col],v=c.getAttribute("data-v");
        return v===null?c.textContent:(v===""?NaN:parseFloat(v));}
      rows.sort(function(a,b){var x=key(a),y=key(b);
        if(typeof x==="number"&&typeof y==="number"){
          if(isNaN(x))return 1;if(isNaN(y))return -1;return asc?x-y:y-x;}
        return asc?String(x).localeCompare(String(y)):String(y).localeCompare(String(x));});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"""


def _summary_html(ctx: _Context) -> str:
    spec = ctx.spec
    counts = ctx.frame["status"].astype(str).value_counts() if "status" in ctx.frame else {}
    budget = spec.get("budget") or {}
    budget_txt = []
    if isinstance(budget, Mapping):
        if budget.get("evaluations"):
            budget_txt.append(f"{int(budget['evaluations']):,} evaluations")
        if budget.get("time"):
            budget_txt.append(f"{float(budget['time']) / 60:.4g} min wall time")
        if budget.get("cpu_hours"):
            budget_txt.append(f"{budget['cpu_hours']} CPU-hours")
        if budget.get("stagnation"):
            st = budget["stagnation"]
            budget_txt.append(
                f"stop if hypervolume gains < {st.get('tol')} over {st.get('window')} evaluations"
            )
    n_total = len(ctx.frame)
    used = ""
    finished = int((ctx.frame["status"].astype(str) == "done").sum())  # rungs included
    if isinstance(budget, Mapping) and budget.get("evaluations"):
        used = f"{finished / float(budget['evaluations']):.0%} of budget"
    if finished > len(ctx.done):
        used += f"{', ' if used else ''}{len(ctx.done):,} at the full training budget"
    cards = [
        ("designs", f"{n_total:,}", ", ".join(f"{k} {v:,}" for k, v in dict(counts).items())),
        ("finished", f"{finished:,}", used),
        ("Pareto-optimal", f"{len(ctx.front):,}", "feasible, non-dominated"),
    ]
    if ctx.hv is not None:
        cards.append(("hypervolume", _fmt(ctx.hv), "see reference point below"))
    if "duration_s" in ctx.frame and ctx.frame["duration_s"].notna().any():
        total_h = pd.to_numeric(ctx.frame["duration_s"], errors="coerce").sum() / 3600
        cards.append(("evaluation time", f"{total_h:.3g} h", "summed over designs"))
    card_html = "".join(
        f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div>'
        f'<div class="s">{_esc(s)}</div></div>'
        for k, v, s in cards
    )
    ev = spec.get("evaluator")
    if isinstance(ev, Mapping):
        opts = {k: v for k, v in ev.items() if k != "name"}
        ev_txt = f"{ev.get('name')}" + (f"  {json.dumps(opts, default=str)}" if opts else "")
    else:
        ev_txt = str(ev)
    opt = spec.get("optimizer") or {}
    opt_txt = opt.get("name", "") if isinstance(opt, Mapping) else str(opt)
    if isinstance(opt, Mapping) and len(opt) > 1:
        opt_txt += "  " + json.dumps({k: v for k, v in opt.items() if k != "name"}, default=str)
    rows = [
        ("evaluator", ev_txt),
        ("optimizer", opt_txt or "–"),
        ("objectives", ", ".join(plots.axis_label(k, v) for k, v in ctx.objectives.items())),
        ("constraints", "; ".join(spec.get("constraints") or []) or "none"),
        ("budget", "; ".join(budget_txt) or "–"),
        ("seed", spec.get("seed", "–")),
    ]
    if ctx.ref_point is not None:
        rows.append(
            (
                "hypervolume reference point",
                ", ".join(f"{k} = {_fmt(v)}" for k, v in ctx.ref_point.items()),
            )
        )
    kv = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in rows)
    return f'<section id="summary"><h2>Study summary</h2><div class="cards">{card_html}</div><dl class="kv">{kv}</dl></section>'


def _figure_html(fig: _Figure, extra: str = "") -> str:
    return (
        f'<section id="fig-{fig.key}"><h2>{_esc(fig.title)}</h2><figure>'
        f'<img src="{_png_uri(fig.png)}" alt="{_esc(fig.title)}" data-file="{fig.key}.png">'
        f'<figcaption>{_esc(fig.caption)} <span class="note">(also saved as '
        f"<code>{fig.key}.png</code>)</span></figcaption></figure>{extra}</section>"
    )


# Drag-to-rotate 3-D scatter on a <canvas>: a bonus over the static PNG, with
# no library (the report must stay offline). Points are pre-normalised to the
# unit cube in Python; this only rotates, projects and paints them by depth.
_ROTATE_JS = """
(function(){var c=document.getElementById("rot3d");if(!c||!c.getContext)return;
var d=JSON.parse(c.getAttribute("data-points")),g=c.getContext("2d"),W=c.width,H=c.height,
yaw=-0.75,pitch=0.42,drag=null;
function P(p){var x=p[0]-.5,y=p[1]-.5,z=p[2]-.5,cy=Math.cos(yaw),sy=Math.sin(yaw),
cp=Math.cos(pitch),sp=Math.sin(pitch),X=x*cy-y*sy,Y=x*sy+y*cy,s=Math.min(W,H)*.55;
return[W/2+X*s,H/2-(z*cp+Y*sp)*s,Y*cp-z*sp];}
function line(a,b,col,w){var p=P(a),q=P(b);g.strokeStyle=col;g.lineWidth=w;g.beginPath();
g.moveTo(p[0],p[1]);g.lineTo(q[0],q[1]);g.stroke();}
function text(p,t,col){var q=P(p);g.fillStyle=col;g.fillText(t,q[0],q[1]);}
function draw(){g.clearRect(0,0,W,H);g.font="12px system-ui,sans-serif";g.textAlign="center";
for(var i=0;i<8;i++)for(var k=0;k<3;k++){var a=[i&1,i>>1&1,i>>2&1];if(a[k])continue;
var b=a.slice();b[k]=1;line(a,b,"#dde2e8",1);}
var O=[0,0,0],E=[[1,0,0],[0,1,0],[0,0,1]],N="xyz";g.font="bold 13px system-ui,sans-serif";
for(k=0;k<3;k++){line(O,E[k],"#6b7580",1.5);text(E[k].map(function(v){return v*1.1;}),N[k],
"#1d2733");}g.textAlign="left";g.font="12px system-ui,sans-serif";
var tw=0;for(k=0;k<3;k++)tw=Math.max(tw,g.measureText(N[k]+":  "+d.labels[k]).width);
for(k=0;k<3;k++){g.fillStyle="#1d2733";g.fillText(N[k]+":  "+d.labels[k],14,22+k*18);
g.fillStyle="#6b7580";g.fillText(d.ticks[k][0]+" \u2013 "+d.ticks[k][1],tw+34,22+k*18);}
var pts=[];d.all.forEach(function(p){pts.push([P(p),2,"rgba(150,160,172,.45)"]);});
d.front.forEach(function(p){pts.push([P(p),3.6,"#1f5fa8"]);});
if(d.knee)pts.push([P(d.knee),6.5,"#d1495b"]);
pts.sort(function(a,b){return b[0][2]-a[0][2];});
pts.forEach(function(p){g.fillStyle=p[2];g.beginPath();g.arc(p[0][0],p[0][1],p[1],0,6.2832);
g.fill();});c.setAttribute("data-drawn",String(pts.length));}
c.addEventListener("pointerdown",function(e){drag=[e.clientX,e.clientY,yaw,pitch];
try{c.setPointerCapture(e.pointerId);}catch(err){}});
c.addEventListener("pointermove",function(e){if(!drag)return;yaw=drag[2]+(e.clientX-drag[0])*.01;
pitch=Math.max(-1.5,Math.min(1.5,drag[3]+(e.clientY-drag[1])*.01));draw();});
c.addEventListener("pointerup",function(){drag=null;});draw();})();
"""
_ROTATE_MAX_POINTS = 3000  # grey background points kept (evenly strided) to bound file size


def _rotator_html(ctx: _Context) -> str:
    """Data for the drag-to-rotate view: first three objectives, unit-cube scaled."""
    names = list(ctx.objectives)[:3]
    done = ctx.done
    if len(done) > _ROTATE_MAX_POINTS:
        done = done.iloc[:: -(-len(done) // _ROTATE_MAX_POINTS)]
    scaled: dict[str, Any] = {"labels": [], "ticks": [], "all": [], "front": [], "knee": None}
    cols_all, cols_front, cols_knee = [], [], []
    for n in names:
        ref = pd.to_numeric(ctx.done[n], errors="coerce").to_numpy(dtype=float)
        log = plots.wants_log(ref)
        tf = np.log10 if log else (lambda v: v)
        lo, hi = np.nanmin(tf(ref)), np.nanmax(tf(ref))
        span = hi - lo if hi > lo else 1.0

        def unit(v, tf=tf, lo=lo, span=span):
            return np.round((tf(np.asarray(v, dtype=float)) - lo) / span, 4)

        cols_all.append(unit(pd.to_numeric(done[n], errors="coerce")))
        cols_front.append(unit(pd.to_numeric(ctx.front[n], errors="coerce")))
        if ctx.knee is not None:
            cols_knee.append(float(unit([float(ctx.knee[n])])[0]))
        arrow = {"min": "\u2193", "max": "\u2191"}[ctx.objectives[n]]
        scaled["labels"].append(f"{n} {arrow}" + (" (log)" if log else ""))
        scaled["ticks"].append([_fmt(float(np.nanmin(ref))), _fmt(float(np.nanmax(ref)))])

    def points(cols: list[np.ndarray]) -> list[list[float]]:
        arr = np.column_stack(cols)
        return arr[np.isfinite(arr).all(axis=1)].tolist()

    scaled["all"] = points(cols_all)
    scaled["front"] = points(cols_front)
    scaled["knee"] = cols_knee or None
    data = json.dumps(scaled, separators=(",", ":"), allow_nan=False)
    return (
        '<h3 class="sub">Interactive view — drag to rotate</h3>'
        f'<canvas id="rot3d" width="900" height="560" data-points="{_esc(data)}" '
        'aria-label="rotatable 3-D scatter of the objectives"></canvas>'
        '<p class="note">Each axis spans the range of all finished designs (listed top left; '
        "the first value at the origin corner). Grey: all designs; blue: Pareto front; "
        "red: knee point.</p>"
    )


def _table_columns(ctx: _Context) -> list[str]:
    constraint_metrics: list[str] = []
    for text in ctx.spec.get("constraints") or []:
        try:
            from search_spaces.expressions import parse_constraint

            names = sorted(parse_constraint(text).names)
        except Exception:
            names = []
        constraint_metrics.extend(
            n
            for n in names
            if n in ctx.front and n not in ctx.objectives and n not in constraint_metrics
        )
    return list(ctx.objectives) + constraint_metrics + [p for p in ctx.params if p in ctx.front]


def _front_table_html(ctx: _Context) -> str:
    if ctx.front.empty:
        return (
            '<section id="front"><h2>Pareto front</h2><p class="note">No finished, feasible '
            "design yet: nothing is on the front.</p></section>"
        )
    cols = _table_columns(ctx)
    knee_id = None if ctx.knee is None else str(ctx.knee["design_id"])
    chosen = {c.design_id: c.label for c in ctx.chosen}
    head = ['<th class="t" title="design_id">design</th>']
    for c in cols:
        cls = ' class="obj"' if c in ctx.objectives else ""
        head.append(f"<th{cls}>{_esc(plots.axis_label(c, ctx.objectives.get(c)))}</th>")
    body = []
    for _, row in ctx.front.iterrows():
        did = str(row["design_id"])
        badge = f'<span class="badge">{_esc(chosen[did])}</span>' if did in chosen else ""
        cells = [f'<td class="t" title="{_esc(did)}"><code>{_esc(did[:10])}</code>{badge}</td>']
        for c in cols:
            v = row.get(c)
            num = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
            if isinstance(v, (bool, np.bool_)) or isinstance(v, str) or pd.isna(num):
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    cells.append('<td data-v="">–</td>')
                else:
                    cells.append(f'<td class="t">{_esc(_fmt(v))}</td>')
            else:
                cells.append(f'<td data-v="{float(num)!r}">{_esc(_fmt(v))}</td>')
        cls = ' class="knee"' if did == knee_id else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        f'<section id="front"><h2>Pareto front ({len(ctx.front)} designs)</h2>'
        '<p class="note">Click a column header to sort. Objectives are shaded; the knee '
        "point is highlighted.</p>"
        f'<div class="tablewrap"><table class="sortable" id="front-table"><thead><tr>{"".join(head)}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table></div></section>"
    )


def _chosen_html(ctx: _Context, fig: _Figure | None) -> str:
    if not ctx.chosen:
        return ""
    by_id = ctx.done.set_index(ctx.done["design_id"].astype(str))
    items = []
    for c in ctx.chosen:
        row = by_id.loc[c.design_id]
        values = "".join(f"<td>{_esc(_fmt(row[o]))}</td>" for o in ctx.objectives)
        items.append(
            f'<tr><td class="t">{_esc(c.label)}</td><td class="t"><code>{_esc(c.design_id)}'
            f'</code></td>{values}<td class="t">{_esc(c.why)}</td></tr>'
        )
    heads = "".join(
        f'<th class="obj">{_esc(plots.axis_label(o, s))}</th>' for o, s in ctx.objectives.items()
    )
    table = (
        '<table><thead><tr><th class="t">label</th><th class="t">design_id</th>'
        f'{heads}<th class="t">why</th></tr></thead><tbody>{"".join(items)}</tbody></table>'
    )
    if fig is None:
        body = (
            '<p class="note">This evaluator reports no <code>energy.*_nj</code> or '
            "<code>area.*_mm2</code> breakdown metrics, so there is nothing to break down.</p>"
        )
    else:
        body = (
            f'<figure><img src="{_png_uri(fig.png)}" alt="{_esc(fig.title)}" '
            f'data-file="{fig.key}.png"><figcaption>{_esc(fig.caption)} <span class="note">'
            f"(also saved as <code>{fig.key}.png</code>)</span></figcaption></figure>"
        )
    return (
        '<section id="breakdown"><h2>Chosen designs: energy and area breakdown</h2>'
        f'<div class="tablewrap" style="max-height:none;margin-bottom:14px">{table}</div>{body}</section>'
    )


_NAV = (
    ("summary", "Summary"),
    ("fig-pareto_2d", "Pareto 2-D"),
    ("fig-pareto_3d", "3-D"),
    ("fig-parallel", "Parallel coordinates"),
    ("fig-hypervolume", "Hypervolume"),
    ("breakdown", "Breakdown"),
    ("front", "Front table"),
)


def _nav_html(ctx: _Context, figs: Mapping[str, _Figure]) -> str:
    present = (
        {"summary", "front"} | {f"fig-{k}" for k in figs} | ({"breakdown"} if ctx.chosen else set())
    )
    links = "".join(f'<a href="#{a}">{_esc(t)}</a>' for a, t in _NAV if a in present)
    return f"<nav>{links}</nav>"


def _render(ctx: _Context) -> str:
    name = str(ctx.spec.get("name", "study"))
    desc = ctx.spec.get("description") or ""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    figs = {f.key: f for f in ctx.figures}
    main_figs = "".join(
        _figure_html(figs[k], _rotator_html(ctx) if k == "pareto_3d" else "")
        for k in ("pareto_2d", "pareto_3d", "parallel", "hypervolume")
        if k in figs
    )
    if len(ctx.objectives) < 2:
        main_figs = (
            '<section><h2>Figures</h2><p class="note">A single objective has no Pareto front to '
            "plot; see the table.</p></section>" + main_figs
        )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(name)} — cim-dse study report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{_esc(name)}</h1><p>{_esc(desc) + ' · ' if desc else ''}"
        f"cim-dse study report · generated {stamp}</p>{_nav_html(ctx, figs)}</header><main>",
        _summary_html(ctx),
        main_figs,
        _chosen_html(ctx, figs.get("breakdown")),
        _front_table_html(ctx),
        "<footer>Static report: no network resources; figures are embedded and saved "
        "next to this file.</footer></main>",
        f"<script>{_SORTER_JS}{_ROTATE_JS if 'pareto_3d' in figs else ''}</script></body></html>",
    ]
    return "\n".join(parts)


def write_report(
    frame: pd.DataFrame,
    spec: Mapping[str, Any],
    out_dir: Path | str,
    *,
    chosen: list[str] | None = None,
    ref_point: Mapping[str, float] | None = None,
) -> Path:
    """Write ``report.html`` and its PNGs into ``out_dir``; return the HTML path.

    ``frame`` is :meth:`dse.store.Store.frame` (every design, any status);
    ``spec`` the study spec as a dict (``name``, ``objectives``, ``constraints``,
    ``space``, ``evaluator``, ``budget``...). ``chosen`` lists design ids whose
    energy/area breakdowns to show; by default the knee point and the best
    design for each objective on the front. ``ref_point`` ({objective: value})
    fixes the hypervolume reference point (default: :func:`dse.query.hypervolume`'s).
    """
    objectives = dict(spec.get("objectives") or {})
    if not objectives:
        raise ReportError("spec has no objectives; expected e.g. {'objectives': {'f1': 'min'}}")
    bad = {k: v for k, v in objectives.items() if v not in ("min", "max")}
    if bad:
        raise ReportError(f"objective senses {bad} are not allowed; allowed: 'min' or 'max'")
    missing = [c for c in ("design_id", "status", *objectives) if c not in frame.columns]
    if missing:
        raise ReportError(
            f"frame lacks columns {missing}; expected Store.frame() columns (meta columns "
            f"{', '.join(META_COLUMNS[:3])}..., params, and the objective metrics)"
        )
    constraints = list(spec.get("constraints") or [])
    if ref_point is None and spec.get("ref_point"):
        ref_point = dict(spec["ref_point"])  # the study's stated point, as its run used
    # done, full-budget rows (a multi-fidelity study's lower rungs are not designs): query's rule
    done = _query().feasible_done(frame).copy()
    front = _pareto_front(frame, objectives, constraints)
    params, log_params = _params(frame, spec)
    hv, ref, hist = _hypervolume(frame, objectives, constraints, ref_point)
    ctx = _Context(
        spec=spec,
        objectives=objectives,
        frame=frame,
        done=done,
        front=front,
        params=params,
        log_params=log_params,
        knee=_knee(front, objectives),
        ref_point=ref,
        hv=hv,
        hv_history=hist,
    )
    if constraints:
        feasible = _query().feasible_done(frame, constraints)
        ctx.infeasible = done.loc[~done.index.isin(feasible.index)]
    ctx.chosen = _choose(ctx, chosen) if not front.empty or chosen else []
    _build_figures(ctx)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for fig in ctx.figures:
        (out / f"{fig.key}.png").write_bytes(fig.png)
    path = out / "report.html"
    path.write_text(_render(ctx), encoding="utf-8")
    return path


def report_from_store(store: Any, out_dir: Path | str | None = None, **kwargs: Any) -> Path:
    """Load the frame and spec from a :class:`dse.store.Store` and write the report.

    Default ``out_dir``: ``<study dir>/report/``, the study dir being the folder
    of a SQLite store file (``runs/<study>/study.db``).
    """
    spec = store.load_spec()
    if spec is None:
        raise ReportError("the store has no saved study spec; was it created by `dse run`?")
    if hasattr(spec, "model_dump"):
        spec = spec.model_dump()
    if out_dir is None:
        from dse.layout import StudyLayout

        out_dir = StudyLayout(_study_dir(store)).report_dir
    return write_report(store.frame(), dict(spec), Path(out_dir), **kwargs)


def _study_dir(store: Any) -> Path:
    from dse.layout import study_dir_of_store

    folder = study_dir_of_store(store)
    if folder is None:
        raise ReportError(
            f"cannot tell the study folder of store {getattr(store, 'url', store)!r} "
            "(not a SQLite file); pass out_dir"
        )
    return folder
