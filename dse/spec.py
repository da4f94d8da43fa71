"""Study files: YAML validated into typed objects.

Why pydantic plus a second, semantic pass: pydantic catches shape errors (unknown
keys, wrong types); the semantic pass checks what needs the rest of the system
(the evaluator exists and produces the objectives, the optimizer exists, the
constraints name real metrics). Both end in one :class:`SpecError` whose message
names the key, the value and what is allowed — before any store is touched.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dse.bounded_yaml import StudyFileError, load_study_yaml
from dse.errors import SpecError
from dse.locations import check_ray_address, check_storage
from evaluators.base import EvaluatorError, EvaluatorSpec
from search_spaces.expressions import Constraint, ExpressionError, parse_constraint

__all__ = ["SpecError", "StudySpec", "ResolvedStudy", "load_spec", "parse_duration"]


_DURATION = re.compile(
    r"^\s*(?:(?P<h>\d+(?:\.\d+)?)h)?\s*(?:(?P<m>\d+(?:\.\d+)?)m)?\s*(?:(?P<s>\d+(?:\.\d+)?)s)?\s*$"
)


def parse_duration(value: str | int | float | None) -> float | None:
    """'90s', '10m', '2h', '1h30m' or a number of seconds -> seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"duration {value!r} is not a number or a string like '10m'")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"duration {value!r} must be positive")
        return float(value)
    try:  # a number given as text ('0', '90', '-5'): judged as that number
        number = float(str(value))
    except ValueError:
        number = None
    if number is not None and math.isfinite(number):
        if number <= 0:
            raise ValueError(f"duration {value!r} must be positive (seconds, or e.g. '10m')")
        return number
    m = _DURATION.match(str(value))
    if not m or not any(m.groupdict().values()):
        raise ValueError(
            f"duration {value!r} is not understood; allowed: seconds as a number, or "
            "'<n>s', '<n>m', '<n>h', combined like '1h30m'"
        )
    seconds = sum(float(m.group(k) or 0) * f for k, f in (("h", 3600), ("m", 60), ("s", 1)))
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StagnationSpec(_Strict):
    """Stop when hypervolume improves by less than ``tol`` (relative) over ``window`` evaluations."""

    window: int = Field(200, ge=1, description="evaluations to look back over")
    tol: float = Field(1e-4, ge=0, description="minimum relative hypervolume gain over the window")


class BudgetSpec(_Strict):
    """When to stop: the first budget reached ends the study (at least one is required)."""

    evaluations: int | None = Field(
        None, ge=1, description="designs evaluated (done + failed), resumes included"
    )
    time: float | None = Field(
        None, description="wall time, e.g. 90s, 10m, 2h, 1h30m (resumes included)"
    )
    stagnation: StagnationSpec | None = Field(
        None, description="stop when the hypervolume stops improving"
    )
    cpu_hours: float | None = Field(None, gt=0, description="evaluation CPU time x runner.num_cpus")
    fail_fast: int = Field(
        5,
        ge=0,
        description="stop when the first N evaluations of a run all fail, or the same error "
        "repeats N times in a row (0: never); what was recorded stays, `dse resume` continues",
    )

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, v: Any) -> float | None:
        return parse_duration(v)

    @model_validator(mode="after")
    def _some_budget(self) -> BudgetSpec:
        if self.evaluations is None and self.time is None and self.cpu_hours is None:
            raise ValueError("give at least one of evaluations, time, cpu_hours")
        return self


class OptimizerSpec(BaseModel):
    """``name`` plus backend options (e.g. ``population``) passed through."""

    model_config = ConfigDict(extra="allow")
    name: str = Field("nsga2", description="nsga2, nsga3, optuna-nsga2, tpe, random, grid, qmc")
    population: int | None = Field(None, ge=2, description="population / generation size")

    def options(self) -> dict[str, Any]:
        opts = dict(self.model_extra or {})
        if self.population is not None:
            opts["population"] = self.population
        return opts


class RunnerSpec(_Strict):
    """Where evaluations run: in-process (serial) or on Ray (local cores or a cluster)."""

    kind: Literal["serial", "ray"] = Field(
        "ray", description="ray (local cores or a cluster) or serial (debug)"
    )
    workers: int | None = Field(None, ge=1, description="local Ray workers (default: all cores)")
    address: str | None = Field(
        None,
        description="existing Ray cluster: auto or host:port (ray://host:port needs ray[client])",
    )
    num_cpus: float = Field(1.0, gt=0, description="CPUs per evaluation")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per evaluation")
    timeout: float | None = Field(None, description="per-evaluation time limit, e.g. 10m")
    max_retries: int = Field(2, ge=0, description="retries when a worker process dies")
    batch: int | None = Field(None, ge=1, description="designs in flight (serial runner)")
    shared_cache_dir: str | None = Field(
        None, description="trained-model cache every node can read"
    )

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> float | None:
        return parse_duration(v)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        return check_ray_address(v)


class HalvingSpec(_Strict):
    """Multi-objective successive halving for sweeps: trials step ``resource`` through ``rungs``
    and only the top 1/eta by non-dominated rank (crowding-distance tie-break) go on."""

    resource: str = Field("train.epochs", description="design key stepped through the rungs")
    rungs: list[float] = Field(
        default_factory=lambda: [1, 3, 9], min_length=2, description="resource values"
    )
    eta: float = Field(3.0, gt=1, description="keep the top 1/eta at each rung")


class SweepSpec(_Strict):
    """Settings of ``dse sweep`` (Ray Tune) beyond the budget."""

    halving: HalvingSpec | None = Field(None, description="early stopping over training epochs")
    max_failures: int | None = Field(None, ge=0, description="Tune FailureConfig retries per trial")


class StudySpec(_Strict):
    """The study file, as typed data (shape only; see :func:`resolve`)."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=100,
        description="study name; results in runs/<name>/",
    )
    evaluator: str | dict[str, Any] = Field(
        description="zdt1, zdt2, zdt3, dtlz2, cim, ... or {name: cim, dataset: digits, ...} with options "
        "(cim datasets: digits, mnist5k (real MNIST, offline), mnist1d, mnist, fashion_mnist, cifar10)"
    )
    space: dict[str, Any] | None = Field(
        None, description="params (see above); default: the evaluator's space"
    )
    objectives: dict[str, Literal["min", "max"]] = Field(description="metric name: min or max")
    constraints: list[str] = Field(
        default_factory=list, description="e.g. ['accuracy_p5 >= 0.85', 'area_mm2 <= 2']"
    )
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec, description="search algorithm")
    budget: BudgetSpec = Field(description="when to stop")
    runner: RunnerSpec = Field(default_factory=RunnerSpec, description="where evaluations run")
    sweep: SweepSpec | None = Field(None, description="dse sweep settings (halving, failures)")
    fidelity: HalvingSpec | None = Field(
        None,
        description="multi-fidelity in dse run: each proposed design is evaluated at the "
        "first rung of resource (e.g. train.epochs), the top 1/eta by non-dominated rank climb "
        "to the next; the front is built from last-rung results only",
    )
    ref_point: dict[str, float] | None = Field(
        None,
        description="hypervolume reference point {objective: value}; default: the nadir of all "
        "done designs + 10% of their range (the stagnation stop, dse status and the report all "
        "use this one)",
    )
    seed: int = Field(
        0,
        ge=0,
        description="seeds the optimizer (same seed, same designs with the serial runner)",
    )
    storage: str | None = Field(
        None, description="store path or SQLAlchemy URL; default runs/<name>/study.db"
    )
    description: str | None = Field(None, description="free text shown in reports")
    plugins: list[str] = Field(
        default_factory=list,
        description="modules imported first, in the driver and every worker (they register "
        "your evaluators/optimizers)",
    )

    @field_validator("storage")
    @classmethod
    def _storage(cls, v: str | None) -> str | None:
        return check_storage(v)

    @field_validator("objectives")
    @classmethod
    def _nonempty(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("at least one objective is required, e.g. {f1: min}")
        return v

    @model_validator(mode="after")
    def _ref_point_per_objective(self) -> StudySpec:
        if self.ref_point is not None and set(self.ref_point) != set(self.objectives):
            raise ValueError(
                f"ref_point has {sorted(self.ref_point)}; allowed: one value for each objective "
                f"{sorted(self.objectives)}"
            )
        return self

    @property
    def evaluator_spec(self) -> EvaluatorSpec:
        plugins = tuple(self.plugins)
        if isinstance(self.evaluator, str):
            return EvaluatorSpec(self.evaluator, {}, plugins)
        opts = dict(self.evaluator)
        name = opts.pop("name", None)
        if not isinstance(name, str):
            raise SpecError(
                "key 'evaluator.name': missing; give e.g. evaluator: {name: cim, dataset: digits}"
            )
        return EvaluatorSpec(name, opts, plugins)


@dataclass
class ResolvedStudy:
    """A validated spec with its live objects: space, evaluator, constraints."""

    spec: StudySpec
    space: Any  # search_spaces.SearchSpace
    evaluator_spec: EvaluatorSpec
    evaluator: Any  # evaluators.base.Evaluator
    constraints: list[Constraint]
    source: Path | None = None

    def saved_spec(self) -> dict[str, Any]:
        """The spec as the store and ``spec.yaml`` keep it: JSON types, with the canonical space.

        Why the space is written out even when the study file left it to the evaluator's
        default: report, export and ``dse status`` then read the parameters, their ranges and
        log scales from the store alone, without importing or building the evaluator (a
        plugin not installed where the report is made, a dataset not present there), and a
        resume searches the space the study started with.
        """
        saved = self.spec.model_dump(mode="json", exclude_none=True)
        saved["space"] = self.space.to_dict()
        return saved

    def default_storage(self, runs_dir: Path | str = "runs") -> str:
        from dse.layout import StudyLayout

        return StudyLayout.for_study(self.spec.name, runs_dir).storage(self.spec.storage)


def _format_validation_error(exc: ValidationError, data: Any, where: str) -> str:
    lines = []
    errors = exc.errors()
    # a misspelt required key is one mistake, not two: "unknown key 'objetives' (did you
    # mean 'objectives'?)" instead of also "objectives: missing"
    explained = {
        _suggestion(_loc(err))
        for err in errors
        if err["type"] == "extra_forbidden" and _suggestion(_loc(err))
    }
    for err in errors:
        loc = _loc(err)
        if err["type"] == "missing" and loc in explained:
            continue
        value = err.get("input")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            parent = loc.rsplit(".", 1)[0] if "." in loc else ""
            allowed = _allowed_keys(parent)
            hint = _suggestion(loc)
            lines.append(
                f"key '{loc}': unknown key"
                + (f" (did you mean '{hint}'?)" if hint else "")
                + (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
            )
            continue
        if err["type"] == "literal_error":
            msg = msg.replace("Input should be", "allowed:")
        elif err["type"] in _PYDANTIC_ALLOWED:
            try:
                msg = "allowed: " + _PYDANTIC_ALLOWED[err["type"]].format(**err.get("ctx", {}))
            except (KeyError, IndexError):
                pass
        if err["type"] == "missing":
            lines.append(f"key '{loc}': missing; it is required")
            continue
        lines.append(f"key '{loc}': value {_short(value)}: {msg}")
    return f"{where}: " + "; ".join(lines)


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message names the value, it does not
    dump a whole section of the study file."""
    text = repr(value)
    return (
        text
        if len(text) <= limit
        else text[: limit - 5] + " ...}"[: 5 if isinstance(value, dict) else 4]
    )


def _loc(err: Any) -> str:
    """The dotted key of a pydantic error, without pydantic's validator and union names."""
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
    # pydantic puts union branch names in loc ("str", "dict[str,any]"); drop them
    return re.sub(r"\.(str|dict\[[^\]]*\]|int|float|list\[[^\]]*\])(?=\.|$)", "", loc)


def _suggestion(loc: str) -> str | None:
    """The allowed key (dotted, same parent) closest to the unknown key ``loc``, if any."""
    import difflib

    parent, _, name = loc.rpartition(".")
    close = difflib.get_close_matches(name, _allowed_keys(parent), n=1, cutoff=0.75)
    return f"{parent}.{close[0]}" if close and parent else (close[0] if close else None)


def _allowed_keys(parent: str) -> list[str]:
    model: type[BaseModel] = StudySpec
    for part in [p for p in parent.split(".") if p]:
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        sub = next(
            (
                a
                for a in getattr(ann, "__args__", (ann,))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        if sub is None:
            return []
        model = sub
    return sorted(model.model_fields)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: what the YAML parser expected, and where (line:column, 1-based)."""
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")


_PYDANTIC_ALLOWED = {
    "greater_than_equal": ">= {ge}",
    "greater_than": "> {gt}",
    "less_than_equal": "<= {le}",
    "less_than": "< {lt}",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "int_type": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "list_type": "a list",
}


def load_spec(
    source: str | Path | dict[str, Any], *, overrides: dict[str, Any] | None = None
) -> ResolvedStudy:
    """Read, validate and resolve a study file (path, YAML text path, or dict).

    ``overrides`` are dotted keys (``runner.kind``) applied before validation,
    so CLI flags get the same checks as the file.
    """
    where = str(source) if not isinstance(source, dict) else "study"
    if isinstance(source, dict):
        data = source
        path = None
    else:
        path = Path(source)
        if not path.exists():
            raise SpecError(f"study file {str(path)!r} does not exist")
        try:
            data = load_study_yaml(path)  # size, aliases, depth, duplicate keys bounded
        except StudyFileError as exc:
            raise SpecError(str(exc)) from None
        except yaml.YAMLError as exc:
            raise SpecError(f"{where}: not valid YAML: {_yaml_problem(exc)}") from None
        if not isinstance(data, dict):
            raise SpecError(
                f"{where}: a study file is a YAML mapping with keys name, evaluator, objectives, budget, ..."
            )
    data = dict(data)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            child = node.get(p)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise SpecError(f"cannot override {dotted!r}: {p!r} is not a mapping in {where}")
            node[p] = child = dict(child)
            node = child
        node[leaf] = value
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_validation_error(exc, data, where)) from None
    return resolve(spec, where=where, source=path)


def _check_fidelity(fidelity: HalvingSpec, space: Any, evaluator: Any, where: str) -> None:
    """The rungs set ``fidelity.resource``: the space may fix it but not search it, the
    rungs must increase, and the evaluator must read it from the design."""
    from search_spaces import Fixed

    key = f"{where}: key 'fidelity"
    rungs = list(fidelity.rungs)
    if any(b <= a for a, b in zip(rungs, rungs[1:], strict=False)) or rungs[0] <= 0:
        raise SpecError(f"{key}.rungs': value {rungs}: allowed: positive, increasing values")
    if fidelity.resource in space.names and not isinstance(space[fidelity.resource], Fixed):
        raise SpecError(
            f"{key}.resource': {fidelity.resource!r} is searched by the space; the rungs set "
            f"it: fix it ({{value: ...}}) or leave it out of the space"
        )
    try:
        evaluator.check_fidelity(fidelity.resource)
    except EvaluatorError as exc:
        raise SpecError(f"{key}.resource': {exc}") from None


def resolve(spec: StudySpec, *, where: str = "study", source: Path | None = None) -> ResolvedStudy:
    """Semantic checks that need the evaluator, the space and the optimizer registry."""
    from dse.optimizers import available_optimizers, create_optimizer
    from search_spaces import SearchSpace

    ev_spec = spec.evaluator_spec
    try:
        evaluator = ev_spec.create()  # imports spec.plugins first
    except EvaluatorError as exc:
        raise SpecError(f"{where}: key 'evaluator': {exc}") from None

    if spec.space is not None:
        try:
            space = SearchSpace.from_dict(spec.space)
        except ValueError as exc:
            raise SpecError(f"{where}: {exc}") from None
    else:
        space = evaluator.default_space()
        if space is None:
            raise SpecError(
                f"{where}: key 'space' is required: evaluator {ev_spec.name!r} has no default space"
            )

    try:  # the evaluator's own schema, before any store or directory exists
        evaluator.check_space(space)
    except EvaluatorError as exc:
        raise SpecError(f"{where}: key 'space': {exc}") from None

    if spec.fidelity is not None:
        _check_fidelity(spec.fidelity, space, evaluator, where)

    metrics = set(evaluator.metric_names())
    for obj in spec.objectives:
        if obj not in metrics:
            raise SpecError(
                f"{where}: key 'objectives.{obj}': {obj!r} is not produced by evaluator "
                f"{ev_spec.name!r}; allowed: {', '.join(sorted(metrics))}"
            )
    clash = metrics & set(space.names)
    if clash:
        raise SpecError(
            f"{where}: key 'space': param names {sorted(clash)} clash with metric names"
        )

    constraints = []
    for i, text in enumerate(spec.constraints):
        try:
            c = parse_constraint(text)
        except ExpressionError as exc:
            raise SpecError(f"{where}: key 'constraints.{i}': {exc}") from None
        unknown = c.names - metrics
        if unknown:
            raise SpecError(
                f"{where}: key 'constraints.{i}': value {text!r} names {sorted(unknown)}, not metrics "
                f"of evaluator {ev_spec.name!r}; allowed: {', '.join(sorted(metrics))}"
            )
        constraints.append(c)

    allowed = available_optimizers()
    if spec.optimizer.name not in allowed:
        raise SpecError(
            f"{where}: key 'optimizer.name': value {spec.optimizer.name!r} is not an optimizer; "
            f"allowed: {', '.join(allowed)}"
        )
    try:  # options are checked by building the optimizer once (cheap, touches nothing)
        create_optimizer(
            spec.optimizer.name,
            space,
            dict(spec.objectives),
            constraints,
            spec.seed,
            spec.optimizer.options(),
        )
    except ValueError as exc:
        raise SpecError(f"{where}: key 'optimizer': {exc}") from None
    return ResolvedStudy(spec, space, ev_spec, evaluator, constraints, source)
