"""Generate the study-file reference (docs/study-file.md) from the pydantic spec schema.

    python -m dse.docgen > docs/study-file.md

Why generated: the reference can then never drift from what the validator
accepts; a test regenerates it and compares with the committed file.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from dse.spec import (
    BudgetSpec,
    HalvingSpec,
    OptimizerSpec,
    RunnerSpec,
    StagnationSpec,
    StudySpec,
    SweepSpec,
)

_INTRO = """# Study-file reference

A study file is YAML. Unknown keys are errors (the message lists the allowed
ones). Generated from `dse/spec.py` by `python -m dse.docgen`; do not edit.

The `space:` block maps each param name to one of:

| form | meaning |
|---|---|
| `{low: 0.0, high: 1.0}` | real in [low, high] |
| `{low: 1e-4, high: 1e-1, log: true}` | real, log-uniform |
| `{low: 2, high: 8, type: int}` | integer (optional `step:`) |
| `{choices: [reram, pcm]}` | categorical |
| `{value: 8}` | fixed |
| `{..., size: 30}` | vector: expands to `x_0 ... x_29` |
| `{..., when: "train.method != 'ideal'"}` | conditional: only active when the expression holds |
| `{..., stage: train}` | train (changes the trained weights) or deploy (chip only) |

Constraints are `'<expr> <= <expr>'` or `'<expr> >= <expr>'` over metric names,
e.g. `accuracy_p5 >= 0.85`. Expressions (constraints, `when:`, `dse pareto
--where`) use a restricted language: names (dotted ok), numbers, strings,
lists, comparisons, `in`, `and`/`or`/`not`, `+ - * /`. Nothing is ever `eval`ed.
"""


def _type_text(info: dict[str, Any] | bool) -> str:
    if not isinstance(info, dict):
        return "any"
    if "anyOf" in info:
        return " or ".join(_type_text(i) for i in info["anyOf"] if i.get("type") != "null")
    if "enum" in info:
        return " / ".join(repr(v) for v in info["enum"])
    if "const" in info:
        return repr(info["const"])
    if "$ref" in info:
        return info["$ref"].rsplit("/", 1)[-1]
    if info.get("type") == "object" and "additionalProperties" in info:
        return f"mapping of {_type_text(info['additionalProperties'])}"
    return str(info.get("type", "any"))


def _section(model: type[BaseModel], title: str) -> str:
    schema = model.model_json_schema()
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
    lines = [
        f"## {title}",
        "",
        doc,
        "",
        "| key | type | default | required | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, info in props.items():
        default = info.get("default", "")
        lines.append(
            f"| `{name}` | {_type_text(info)} | {'' if default == '' else repr(default)} | "
            f"{'yes' if name in required else ''} | {info.get('description', '')} |"
        )
    return "\n".join(lines) + "\n"


def _hw_section() -> str:
    """The ``cim`` evaluator's chip keys, from the one hardware description (hw/config.py)."""
    from evaluators.cim.hw.config import HW_KEYS

    lines = [
        "## cim design keys: the chip (`hw.*`)",
        "",
        "Generated from `evaluators/cim/hw/config.py`. A space that can propose a value",
        "outside these is refused before any store exists.",
        "",
        "| key | allowed | default | preset search range | meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in HW_KEYS.values():
        search = spec.search().to_dict() if spec.search is not None else ""
        default = "derived" if spec.default is None else repr(spec.default)
        lines.append(
            f"| `{spec.key}` | {spec.describe()} | {default} | {search} | "
            f"{spec.doc.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def generate() -> str:
    parts = [_INTRO]
    for model, title in (
        (StudySpec, "top level"),
        (BudgetSpec, "budget"),
        (StagnationSpec, "budget.stagnation"),
        (OptimizerSpec, "optimizer (extra keys are passed to the backend)"),
        (RunnerSpec, "runner"),
        (SweepSpec, "sweep"),
        (HalvingSpec, "sweep.halving and fidelity (dse run)"),
    ):
        parts.append(_section(model, title))
    parts.append(_hw_section())
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    print(generate(), end="")
