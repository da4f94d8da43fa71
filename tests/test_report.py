"""The study report: offline HTML + PNGs, checked in a real headless Chromium.

Frames are built in the Store contract's schema (docs/architecture.md): a
CIM-like study with energy/area breakdown metrics and 3 objectives, and a
DTLZ2/ZDT-like benchmark study evaluated with pymoo (no breakdowns).
"""

from __future__ import annotations

import html.parser
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dse import query  # noqa: F401
from dse.report import ReportError, report_from_store, write_report
from dse.store import META_COLUMNS

META = list(META_COLUMNS)

CIM_SPEC = {
    "name": "cim-demo",
    "description": "synthetic CIM-like study for the report test",
    "evaluator": {"name": "cim", "dataset": "digits", "mc_instances": 8},
    "space": {
        "dnn.model": {"choices": ["mlp", "cnn"]},
        "hw.device": {"choices": ["reram", "pcm", "sram"]},
        "hw.adc_bits": {"low": 3, "high": 8, "type": "int"},
        "hw.array_size": {"choices": [64, 128, 256]},
        "hw.variation_scale": {"low": 0.1, "high": 10.0, "log": True},
    },
    "objectives": {"accuracy_mean": "max", "energy_nj": "min", "area_mm2": "min"},
    "constraints": ["accuracy_mean >= 0.3"],
    "optimizer": {"name": "nsga2", "population": 16},
    "budget": {"evaluations": 200},
    "seed": 3,
}


def _meta(n: int, rng: np.random.Generator, status: np.ndarray) -> dict:
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")
    dur = rng.uniform(0.5, 3.0, n)
    done = status == "done"
    done_seq = np.full(n, np.nan)
    done_seq[done] = np.arange(1, done.sum() + 1)
    return {
        "design_id": [f"{h:016x}" for h in rng.integers(0, 2**62, n)],
        "seq": np.arange(n),
        "status": status,
        "attempts": np.ones(n, dtype=int),
        "error": np.where(status == "failed", "RuntimeError: diverged", None),
        "training_key": None,
        "worker": "w0",
        "created_at": t0,
        "started_at": t0,
        "finished_at": t0 + pd.to_timedelta(np.cumsum(dur), unit="s"),
        "duration_s": np.where(done, dur, np.nan),
        "done_seq": done_seq,
    }


def cim_like_frame(n: int = 160, seed: int = 0) -> pd.DataFrame:
    """Random CIM designs whose metrics follow the cost model's shape.

    Energy parts scale like the real model (ADC ~ 2^bits per conversion, array
    reads ~ rows*cols), accuracy drops with variation and rises with ADC bits,
    so the three objectives genuinely conflict and the front is non-trivial.
    """
    rng = np.random.default_rng(seed)
    status = rng.choice(["done", "failed", "queued"], size=n, p=[0.9, 0.06, 0.04])
    model = rng.choice(["mlp", "cnn"], n)
    device = rng.choice(["reram", "pcm", "sram"], n)
    adc = rng.integers(3, 9, n)
    size = rng.choice([64, 128, 256], n)
    var = np.exp(rng.uniform(np.log(0.1), np.log(10.0), n))
    macs = np.where(model == "cnn", 3.0e5, 8.0e4)
    tiles = np.ceil(macs / size**2 / 4)
    e_adc = macs / size * 2.0**adc * 2e-5
    e_array = macs * np.where(device == "sram", 8e-5, 2e-5)
    e_dac = macs / size * 1.5e-3
    e_digital = macs * 6e-6
    a_adc = tiles * size / 8 * 2.0**adc * 2e-6
    a_array = tiles * size**2 * np.where(device == "sram", 4e-7, 1e-7)
    a_periph = tiles * 0.01
    base = np.where(model == "cnn", 0.95, 0.9)
    acc = base - 0.08 * np.log1p(var) * np.where(device == "sram", 0.1, 1.0) - 0.3 * 0.5**adc
    acc = np.clip(acc + rng.normal(0, 0.01, n), 0.05, 0.99)
    metrics = {
        "accuracy_mean": acc,
        "energy_nj": e_adc + e_array + e_dac + e_digital,
        "area_mm2": a_adc + a_array + a_periph,
        "latency_us": macs / size / 100.0,
        "energy.adc_nj": e_adc,
        "energy.array_nj": e_array,
        "energy.dac_nj": e_dac,
        "energy.digital_nj": e_digital,
        "area.adc_mm2": a_adc,
        "area.array_mm2": a_array,
        "area.periphery_mm2": a_periph,
    }
    not_done = status != "done"
    for k in metrics:
        metrics[k] = np.where(not_done, np.nan, metrics[k])
    params = {
        "dnn.model": model,
        "hw.device": device,
        "hw.adc_bits": adc,
        "hw.array_size": size,
        "hw.variation_scale": var,
    }
    return pd.DataFrame({**_meta(n, rng, status), **params, **metrics})


def dtlz2_frame(n: int = 120, seed: int = 1) -> pd.DataFrame:
    """DTLZ2 (3 objectives, 7 vars) evaluated by pymoo: a benchmark-style study."""
    from pymoo.problems import get_problem

    rng = np.random.default_rng(seed)
    prob = get_problem("dtlz2", n_var=7, n_obj=3)
    x = rng.uniform(0, 1, (n, 7))
    x[:, 2:] = 0.5 + rng.normal(0, 0.08, (n, 5)).clip(-0.5, 0.49)  # many near the front
    f = prob.evaluate(x)
    status = np.array(["done"] * n, dtype=object)
    cols = {f"x_{i}": x[:, i] for i in range(7)}
    return pd.DataFrame(
        {**_meta(n, rng, status), **cols, **{f"f{i + 1}": f[:, i] for i in range(3)}}
    )


DTLZ_SPEC = {
    "name": "dtlz2-bench",
    "evaluator": "dtlz2",
    "space": {"x": {"size": 7, "low": 0.0, "high": 1.0}},
    "objectives": {"f1": "min", "f2": "min", "f3": "min"},
    "constraints": [],
    "budget": {"evaluations": 120},
}


def zdt1_frame(n: int = 80, seed: int = 2, n_var: int = 5) -> pd.DataFrame:
    """ZDT1 (2 objectives) evaluated by pymoo; no breakdown metrics."""
    from pymoo.problems import get_problem

    rng = np.random.default_rng(seed)
    prob = get_problem("zdt1", n_var=n_var)
    x = rng.uniform(0, 1, (n, n_var))
    x[: n // 2, 1:] *= 0.05  # half the designs close to the true front
    f = prob.evaluate(x)
    status = np.array(["done"] * (n - 3) + ["failed"] * 3, dtype=object)
    f[n - 3 :] = np.nan
    cols = {f"x_{i}": x[:, i] for i in range(n_var)}
    return pd.DataFrame({**_meta(n, rng, status), **cols, "f1": f[:, 0], "f2": f[:, 1]})


ZDT_SPEC = {
    "name": "zdt1-bench",
    "evaluator": "zdt1",
    "space": {"x": {"size": 5, "low": 0.0, "high": 1.0}},
    "objectives": {"f1": "min", "f2": "min"},
    "budget": {"evaluations": 80},
}

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cim_report(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    frame = cim_like_frame()
    path = write_report(frame, CIM_SPEC, tmp_path_factory.mktemp("cim") / "report")
    return path, frame


class _Doc(html.parser.HTMLParser):
    """Collects resource-bearing attributes, table rows and section ids."""

    def __init__(self) -> None:
        super().__init__()
        self.resources: list[tuple[str, str, str]] = []
        self.imgs: list[dict[str, str]] = []
        self.sections: list[str] = []
        self.front_rows = 0
        self._in_front = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href", "data", "poster", "action", "srcset"):
            if a.get(key):
                self.resources.append((tag, key, a[key]))
        if tag == "img":
            self.imgs.append(a)
        if tag == "section" and a.get("id"):
            self.sections.append(a["id"])
        if tag == "table" and a.get("id") == "front-table":
            self._in_front = True
        if tag == "tr" and self._in_front:
            self.front_rows += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_front = False


def _parse(path: Path) -> _Doc:
    doc = _Doc()
    doc.feed(path.read_text(encoding="utf-8"))
    return doc


def test_cim_report_has_every_section_and_png(cim_report):
    path, frame = cim_report
    objectives = CIM_SPEC["objectives"]
    front = query.pareto_front(frame, objectives, constraints=CIM_SPEC["constraints"], where=None)
    assert 3 <= len(front) < len(frame), "synthetic frame should give a non-trivial front"
    doc = _parse(path)
    for key in ("pareto_2d", "pareto_3d", "parallel", "hypervolume", "breakdown"):
        png = path.parent / f"{key}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000, key
    assert {"summary", "fig-pareto_2d", "fig-pareto_3d", "breakdown", "front"} <= set(doc.sections)
    # every figure is embedded (the HTML alone is complete), each as a real PNG
    assert len(doc.imgs) == 5
    for img in doc.imgs:
        assert img["src"].startswith("data:image/png;base64,")
        import base64

        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == PNG_MAGIC
    # the table shows exactly the front dse.query computes (+1 header row)
    assert doc.front_rows == len(front) + 1
    text = path.read_text()
    for did in front["design_id"]:
        assert f'title="{did}"' in text
    # summary: counts by status, budget
    counts = frame["status"].value_counts()
    assert f"failed {counts['failed']:,}" in text and f"done {counts['done']:,}" in text
    assert "200 evaluations" in text


def test_hypervolume_and_reference_point_are_stated(cim_report):
    path, frame = cim_report
    text = path.read_text()
    m = re.search(r"hypervolume reference point</dt><dd>([^<]+)</dd>", text)
    assert m, "the reference point must be stated next to the hypervolume"
    stated = dict(kv.split(" = ") for kv in m.group(1).split(", "))
    assert list(stated) == list(CIM_SPEC["objectives"])
    # the card shows the hypervolume dse.query gives, at the reference point stated
    res = query.hypervolume(frame, CIM_SPEC["objectives"], constraints=CIM_SPEC["constraints"])
    for k, v in res.ref_point.items():
        assert float(stated[k]) == pytest.approx(v, rel=1e-3)
    card = re.search(r'hypervolume</div><div class="v">([^<]+)</div>', text).group(1)
    assert float(card.replace(",", "")) == pytest.approx(res.value, rel=1e-3)
    # a caller-fixed reference point is used and stated as given
    ref = {"accuracy_mean": 0.5, "energy_nj": 100.0, "area_mm2": 1.0}
    path2 = write_report(frame, CIM_SPEC, path.parent.parent / "fixed", ref_point=ref)
    text2 = path2.read_text()
    assert "accuracy_mean = 0.5, energy_nj = 100, area_mm2 = 1</dd>" in text2
    hv2 = query.hypervolume(frame, CIM_SPEC["objectives"], ref, constraints=CIM_SPEC["constraints"])
    card2 = re.search(r'hypervolume</div><div class="v">([^<]+)</div>', text2).group(1)
    assert float(card2.replace(",", "")) == pytest.approx(hv2.value, rel=1e-3)
    assert hv2.value != pytest.approx(res.value, rel=1e-3)


def test_html_references_nothing_external(cim_report):
    path, _ = cim_report
    text = path.read_text()
    assert not re.search(r"https?://|//cdn|@import|url\(", text, re.I)
    for tag, key, value in _parse(path).resources:
        assert value.startswith(("data:", "#")), f"<{tag} {key}> loads {value[:60]!r}"
    assert "<link" not in text and "<iframe" not in text
    assert text.count("<script") == 1 and "src=" not in text.split("<script", 1)[1].split(">")[0]


def test_two_objectives_without_breakdowns(tmp_path):
    frame = zdt1_frame()
    path = write_report(frame, ZDT_SPEC, tmp_path)
    names = {p.name for p in tmp_path.glob("*.png")}
    assert names == {"pareto_2d.png", "parallel.png", "hypervolume.png"}
    text = path.read_text()
    assert "no <code>energy.*_nj</code> or <code>area.*_mm2</code> breakdown" in text
    assert "fig-pareto_3d" not in text
    front = query.pareto_front(frame, ZDT_SPEC["objectives"])
    assert _parse(path).front_rows == len(front) + 1
    # vector params x: {size: 5} are the columns x_0..x_4 and appear in the table
    assert all(f"<th>x_{i}</th>" in text for i in range(5))


def test_parallel_coordinates_keeps_wide_spaces_legible(tmp_path):
    # 30 variables: only the 16 params most rank-correlated with an objective are drawn,
    # and the caption names the rest; x_0 *is* f1 in ZDT1, so it must be kept
    spec = {**ZDT_SPEC, "space": {"x": {"size": 30, "low": 0.0, "high": 1.0}}}
    text = write_report(zdt1_frame(n_var=30), spec, tmp_path).read_text()
    m = re.search(r"with any objective over the finished designs\): ([^.]+)\.", text)
    assert m, "caption must name the params left out"
    dropped = m.group(1).split(", ")
    assert len(dropped) == 30 - 16 and "x_0" not in dropped
    assert all(re.fullmatch(r"x_\d+", d) for d in dropped)


def test_chosen_designs_and_bad_input(tmp_path):
    frame = cim_like_frame(n=60, seed=5)
    done_ids = list(frame.loc[frame["status"] == "done", "design_id"][:2])
    path = write_report(frame, CIM_SPEC, tmp_path, chosen=done_ids)
    text = path.read_text()
    for did in done_ids:
        assert f"<code>{did}</code>" in text
    with pytest.raises(ReportError, match="not finished designs"):
        write_report(frame, CIM_SPEC, tmp_path, chosen=["nope"])
    with pytest.raises(ReportError, match=r"lacks columns \['area_mm2'\]"):
        write_report(frame.drop(columns=["area_mm2"]), CIM_SPEC, tmp_path)
    with pytest.raises(ReportError, match="allowed: 'min' or 'max'"):
        write_report(frame, {**CIM_SPEC, "objectives": {"energy_nj": "down"}}, tmp_path)


def test_report_from_store_writes_into_study_dir(tmp_path):
    from dse.runners.base import EvalResult
    from dse.store import Store

    frame = dtlz2_frame(n=40)
    store = Store(tmp_path / "dtlz2-bench" / "study.db")
    store.save_spec(DTLZ_SPEC["name"], DTLZ_SPEC)
    params = [{f"x_{i}": float(r[f"x_{i}"]) for i in range(7)} for _, r in frame.iterrows()]
    store.add_designs([(d, p, None) for d, p in zip(frame["design_id"], params, strict=True)])
    store.mark_running(list(frame["design_id"]), worker="w0")
    store.record_results(
        [
            EvalResult(
                d, "done", {"f1": r.f1, "f2": r.f2, "f3": r.f3}, started_at=1.0, finished_at=2.0
            )
            for d, r in zip(frame["design_id"], frame.itertuples(), strict=True)
        ]
    )
    path = report_from_store(store)
    assert path == tmp_path / "dtlz2-bench" / "report" / "report.html"
    front = query.pareto_front(store.frame(), DTLZ_SPEC["objectives"])
    assert _parse(path).front_rows == len(front) + 1
    assert (path.parent / "pareto_3d.png").exists()


def test_parallel_coordinates_axis_encoding():
    from dse.plots import _encode_column

    # categorical levels: evenly spaced in sorted order, labelled at their heights
    pos, labels, ticks = _encode_column(pd.Series(["sram", "reram", "pcm", "reram"]), log=False)
    assert labels == ["pcm", "reram", "sram"] and ticks == [0.0, 0.5, 1.0]
    assert pos.tolist() == [1.0, 0.5, 0.0, 0.5]
    # log-scaled params are normalised in log space, linear ones linearly
    pos, labels, _ = _encode_column(pd.Series([0.1, 1.0, 10.0]), log=True)
    assert pos == pytest.approx([0.0, 0.5, 1.0]) and labels == ["0.1", "10"]
    pos, _, _ = _encode_column(pd.Series([0.1, 1.0, 10.0]), log=False)
    assert pos == pytest.approx([0.0, 0.9 / 9.9, 1.0])


# ---------------------------------------------------------------- headless Chromium

_CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)
# no network at all: every host resolves to nothing and any proxy use goes nowhere
_OFFLINE = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]

# Appended to a copy of the report: once loaded, records whether every image
# decoded, then clicks the first objective's header twice and records the column.
_HOOK = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  document.body.dataset.imagesLoaded = String(imgs.length > 0 && imgs.every(function (i) {
    return i.complete && i.naturalWidth > 0; }));
  document.body.dataset.imageCount = String(imgs.length);
  var t = document.getElementById("front-table"), th = t.tHead.rows[0].cells[1];
  function col() { return Array.prototype.map.call(t.tBodies[0].rows, function (r) {
    return r.cells[1].getAttribute("data-v"); }).join(","); }
  th.click(); document.body.dataset.asc = col();
  th.click(); document.body.dataset.desc = col();
  document.body.dataset.ariaSort = th.getAttribute("aria-sort");
  var c = document.getElementById("rot3d"), before = c.toDataURL();
  document.body.dataset.drawn = c.getAttribute("data-drawn");
  c.dispatchEvent(new PointerEvent("pointerdown", {clientX: 100, clientY: 100, pointerId: 1}));
  c.dispatchEvent(new PointerEvent("pointermove", {clientX: 180, clientY: 120, pointerId: 1}));
  c.dispatchEvent(new PointerEvent("pointerup", {clientX: 180, clientY: 120, pointerId: 1}));
  document.body.dataset.rotated = String(c.toDataURL() !== before);
});
</script></body>"""


def _chromium(profile: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run headless Chromium offline with a throw-away profile (nothing shared between runs)."""
    env = {**os.environ, "HOME": str(profile)}
    return subprocess.run(
        [_CHROMIUM, *_OFFLINE, f"--user-data-dir={profile / 'chromium'}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.browser
@pytest.mark.skipif(
    _CHROMIUM is None, reason="no chromium binary on PATH (.ci/install-system.sh installs it)"
)
def test_report_renders_in_headless_chromium(cim_report, tmp_path):
    from matplotlib.image import imread

    path, frame = cim_report
    # 1) screenshot: the page paints, and not as a blank sheet
    shot = tmp_path / "shot.png"
    res = _chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", path.resolve().as_uri()
    )
    assert shot.exists(), res.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 0.08, "screenshot is (nearly) blank"
    rgb = (pixels * 255).astype(np.uint32)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    assert colours.size > 500  # anti-aliased plots and text, not a few flat fills

    # 2) DOM after load: images decoded and the sorter sorts
    probe = path.parent / "probe.html"
    probe.write_text(
        path.read_text(encoding="utf-8").replace("</body>", _HOOK, 1), encoding="utf-8"
    )
    res = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.resolve().as_uri())
    body = re.search(r"<body([^>]*)>", res.stdout)
    assert body, f"no DOM dumped: {res.stderr[-2000:]}"
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert attrs.get("images-loaded") == "true", attrs
    assert attrs["image-count"] == "5"

    def values(key: str) -> list[float]:
        return [float(v) for v in attrs[key].split(",")]

    first_obj = next(iter(CIM_SPEC["objectives"]))
    front = query.pareto_front(frame, CIM_SPEC["objectives"], constraints=CIM_SPEC["constraints"])
    expected = sorted(front[first_obj].astype(float))
    assert values("asc") == pytest.approx(expected)
    assert values("desc") == pytest.approx(expected[::-1])
    assert attrs["aria-sort"] == "descending"
    # the drag-to-rotate canvas painted every finished design, the front and the knee,
    # and a drag repaints it from another angle
    done = frame[frame["status"] == "done"]
    assert int(attrs["drawn"]) == len(done) + len(front) + 1
    assert attrs["rotated"] == "true"
