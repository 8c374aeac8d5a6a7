"""Search spaces declared in YAML: one entry per run-config key.

::

    space:
      train.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      train.l2_weight:     {type: float, low: 1.0e-8, high: 1.0e-3, log: true}
      model.num_layers:    {type: int, low: 1, high: 4}
      model.layer_combination: [mean, sum]          # a plain list = categorical
      model.embedding_dim: {type: categorical, choices: [32, 64]}

Grid search needs a finite set per parameter: categorical choices, ints (every
``step``-th value from ``low`` to ``high``), or floats with ``values: [...]`` or a
``step``.  Keys must be run-config keys (checked when the first trial's config is
built, with the valid keys listed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from graphrec.config_schema import doc, from_dict
from graphrec.errors import ConfigError

__all__ = ["ParamSpec", "parse_space", "grid_values", "grid_size", "suggest"]


@dataclass
class ParamSpec:
    """One searched run-config key."""

    type: Literal["float", "int", "categorical"] = doc(
        "Distribution: `float`, `int` or `categorical`.", "float"
    )
    low: float | None = doc("Lower bound (float, int).", None)
    high: float | None = doc("Upper bound, inclusive (float, int).", None)
    log: bool = doc("Sample on a log scale (float, int; low must be > 0).", False)
    step: float | None = doc("Discretisation step (float, int); also defines the grid.", None)
    choices: list[Any] = doc(
        "Values of a categorical parameter (scalars: str, int, float, bool, null).",
        default_factory=list,
    )
    values: list[float] = doc(
        "Explicit grid values of a float/int parameter (grid search only; random and TPE use low/high).",
        default_factory=list,
    )

    def bounds(self, key: str = "parameter") -> tuple[float, float]:
        """``(low, high)`` of a float/int parameter (set by :meth:`validate`)."""
        if self.low is None or self.high is None:
            raise ConfigError(f"{key}: a {self.type} parameter needs low and high")
        return self.low, self.high

    def validate(self, prefix: str) -> None:
        if self.type == "categorical":
            if not self.choices:
                raise ConfigError(
                    f"{prefix}.choices: a categorical parameter needs at least one choice"
                )
            for c in self.choices:
                if c is not None and not isinstance(c, (str, int, float, bool)):
                    raise ConfigError(
                        f"{prefix}.choices: {c!r} is not a scalar (optuna stores str, int, float, bool or null)"
                    )
            return
        if self.low is None or self.high is None:
            if self.values:
                self.low, self.high = min(self.values), max(self.values)
            else:
                raise ConfigError(f"{prefix}: a {self.type} parameter needs low and high")
        if self.low > self.high:
            raise ConfigError(f"{prefix}: low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ConfigError(f"{prefix}: log scale needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ConfigError(f"{prefix}: step and log cannot be combined")
        if self.type == "int":
            for name in ("low", "high", "step"):
                value = getattr(self, name)
                if value is not None and float(value) != int(value):
                    raise ConfigError(
                        f"{prefix}.{name}: an int parameter needs whole numbers, got {value}"
                    )


def parse_space(raw: Any, where: str = "space") -> dict[str, ParamSpec]:
    """``{key: spec}`` from YAML; a plain list is a categorical parameter."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(
            f"{where}: expected a non-empty mapping of run-config keys (e.g. train.learning_rate) to parameters"
        )
    out: dict[str, ParamSpec] = {}
    for key, spec in raw.items():
        key = str(key)
        if "." not in key:
            raise ConfigError(
                f"{where}.{key}: a searched key is a run-config key such as 'train.learning_rate' or 'model.num_layers'"
            )
        if isinstance(spec, list):
            spec = {"type": "categorical", "choices": spec}
        out[key] = from_dict(ParamSpec, spec, f"{where}.{key}")
    return out


def grid_values(spec: ParamSpec, key: str = "parameter") -> list[Any]:
    """The finite grid of one parameter (raises when it has none)."""
    if spec.type == "categorical":
        return list(spec.choices)
    if spec.values:
        return (
            [int(v) for v in spec.values] if spec.type == "int" else [float(v) for v in spec.values]
        )
    if spec.type == "int":
        low, high = spec.bounds(key)
        step = int(spec.step or 1)
        return list(range(int(low), int(high) + 1, step))
    if spec.step is not None:
        low, high = spec.bounds(key)
        n = int(math.floor((high - low) / spec.step + 1e-9)) + 1
        return [round(low + i * spec.step, 12) for i in range(n)]
    raise ConfigError(
        f"{key}: grid search needs a finite set of values: give 'values: [...]' or a 'step' for this float"
    )


def grid_size(space: Mapping[str, ParamSpec]) -> int:
    size = 1
    for key, spec in space.items():
        size *= len(grid_values(spec, key))
    return size


def suggest(trial: Any, key: str, spec: ParamSpec, grid: bool = False) -> Any:
    """Draw one value from an Optuna trial (the parameter is named by its config key).

    For grid search every parameter is suggested as a categorical over its grid
    values, which is what Optuna's ``GridSampler`` hands out.
    """
    if grid:
        return trial.suggest_categorical(key, grid_values(spec, key))
    if spec.type == "categorical":
        return trial.suggest_categorical(key, spec.choices)
    low, high = spec.bounds(key)
    if spec.type == "int":
        return trial.suggest_int(key, int(low), int(high), step=int(spec.step or 1), log=spec.log)
    return trial.suggest_float(key, float(low), float(high), step=spec.step, log=spec.log)
