"""Study files: a parameter grid over a base scenario, times seeds (``gcs simulate sweep``).

A study is TOML (full reference in ``simulations/README.md``)::

    name = "loss"
    description = "loss rate vs throughput and retransmissions"
    scenario = "../../scenarios/steady.toml"   # optional base, relative to this file
    seeds = 3                                   # 1..3, or an explicit list [1, 5, 9]
    columns = ["msgs_per_s", "retransmissions"] # optional subset of the run figures

    [base]                                      # scenario keys over the base file
    duration_s = 8
    wire = "objects"

    [[variants]]                                # optional: named designs compared on
    name = "ours"                               # the same seeds and grid
    totem = { fail_to_recv_mode = "exclude_laggard" }

    [grid]                                      # cartesian product, in file order
    "network.loss" = [0.0, 0.05, 0.1]           # dotted paths into the scenario;
    "faults.0.duration_s" = [1.0, 2.0]          # a number indexes a list
    "totem.token_ms+totem.consensus_ms" = [[500, 600], [1000, 1200]]   # varied together

    [[plots]]
    file = "throughput.png"
    x = "network.loss"
    y = ["msgs_per_s"]
    series = "variant"                          # or another grid key; one line per value
    variants = ["ours"]                         # optional: plot only these variants

Every run of a study is a ``Case``: a variant, one value per grid key and a seed. Cases are
numbered in a fixed order (variants, then the grid in file order, then seeds), which is the
row order of the CSV whatever order the runs finish in.
"""

from __future__ import annotations

import copy
import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcs.errors import ConfigError
from gcs.sim.report.figures import COLUMNS
from gcs.sim.scenario import Scenario, parse_scenario

__all__ = ["Case", "PlotSpec", "Study", "load_study", "parse_study", "set_path"]

_KNOWN = {
    "name",
    "description",
    "scenario",
    "seeds",
    "columns",
    "base",
    "variants",
    "grid",
    "plots",
}
_PLOT_KEYS = {"file", "x", "y", "series", "variants", "title", "ylabel", "xlabel", "logx", "logy"}


@dataclass(frozen=True, slots=True)
class PlotSpec:
    """One figure: metric(s) ``y`` against grid key ``x``, one line per ``series`` value."""

    file: str
    x: str
    y: tuple[str, ...]
    series: str = ""
    variants: tuple[str, ...] = ()  # only these variants (default: all)
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    logx: bool = False
    logy: bool = False


@dataclass(frozen=True, slots=True)
class Case:
    """One run of a study."""

    index: int
    variant: str
    params: tuple[tuple[str, Any], ...]
    seed: int
    scenario: Scenario


@dataclass(frozen=True, slots=True)
class Study:
    """A parsed study file."""

    name: str
    description: str
    directory: Path
    base: Mapping[str, Any]
    variants: tuple[tuple[str, Mapping[str, Any]], ...]
    # Each axis: its keys (several when zipped with "+") and one tuple of values per point.
    grid: tuple[tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]], ...]
    seeds: tuple[int, ...]
    columns: tuple[str, ...]
    plots: tuple[PlotSpec, ...]

    @property
    def grid_keys(self) -> tuple[str, ...]:
        return tuple(key for keys, _ in self.grid for key in keys)

    @property
    def has_variants(self) -> bool:
        return len(self.variants) > 1 or self.variants[0][0] != ""

    def cases(self) -> list[Case]:
        """Every run, in CSV order."""
        out: list[Case] = []
        values = [v for _, v in self.grid]
        for variant, overrides in self.variants:
            for combo in itertools.product(*values):
                flat = tuple(value for point in combo for value in point)
                params = tuple(zip(self.grid_keys, flat, strict=True))
                scenario = self.scenario_for(variant, overrides, params)
                for seed in self.seeds:
                    out.append(Case(len(out), variant, params, seed, scenario))
        return out

    def scenario_for(
        self, variant: str, overrides: Mapping[str, Any], params: tuple[tuple[str, Any], ...]
    ) -> Scenario:
        data = _merge(copy.deepcopy(dict(self.base)), overrides)
        for key, value in params:
            set_path(data, key, value)
        label = ",".join(f"{k}={v}" for k, v in params)
        name = "-".join(part for part in (self.name, variant, label) if part)
        data["name"] = name
        try:
            return parse_scenario(data, default_name=name)
        except ConfigError as exc:
            raise ConfigError(f"study {self.name} case {name}", str(exc)) from None


def _merge(into: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge tables; anything else (lists included) is replaced."""
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.0.c`` in nested tables/lists, creating tables as needed."""
    parts = path.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def load_study(path: str | Path) -> Study:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return parse_study(data, path.parent, default_name=path.parent.name or path.stem)


def parse_study(data: Mapping[str, Any], directory: Path, default_name: str = "study") -> Study:
    for key in data:
        if key not in _KNOWN:
            raise ConfigError(key, f"unknown study key (known: {', '.join(sorted(_KNOWN))})")
    base: dict[str, Any] = {}
    if "scenario" in data:
        scenario_path = directory / str(data["scenario"])
        try:
            base = tomllib.loads(scenario_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("scenario", f"cannot load {scenario_path}: {exc}") from None
    base = _merge(base, data.get("base", {}))
    variants = tuple(
        (str(v.get("name", f"v{i}")), {k: x for k, x in v.items() if k != "name"})
        for i, v in enumerate(data.get("variants", []))
    ) or (("", {}),)
    grid = tuple(_axis(str(k), v) for k, v in data.get("grid", {}).items())
    study = Study(
        name=str(data.get("name", default_name)),
        description=str(data.get("description", "")),
        directory=directory,
        base=base,
        variants=variants,
        grid=grid,
        seeds=_seeds(data.get("seeds", 1)),
        columns=_columns(data.get("columns")),
        plots=tuple(_plot(p, i) for i, p in enumerate(data.get("plots", []))),
    )
    known_x = {*study.grid_keys, "variant"}
    for plot in study.plots:
        for key in (plot.x, plot.series):
            if key and key not in known_x:
                raise ConfigError(f"plots.{plot.file}", f"{key!r} is not a grid key or 'variant'")
        names = {name for name, _ in study.variants}
        if any(v not in names for v in plot.variants):
            raise ConfigError(f"plots.{plot.file}", f"variants must be among {sorted(names)}")
        for metric in plot.y:
            if metric not in study.columns:
                raise ConfigError(f"plots.{plot.file}", f"{metric!r} is not a column")
    study.cases()  # every case must resolve to a valid scenario: fail before running anything
    return study


def _axis(key: str, values: Any) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
    """One grid axis; ``a+b = [[1, 2], [3, 4]]`` varies a and b together."""
    keys = tuple(key.split("+"))
    if not isinstance(values, list) or not values:
        raise ConfigError(f"grid.{key}", "a non-empty list of values")
    if len(keys) == 1:
        return keys, tuple((v,) for v in values)
    if any(not isinstance(v, list) or len(v) != len(keys) for v in values):
        raise ConfigError(f"grid.{key}", f"each value must be a list of {len(keys)} values")
    return keys, tuple(tuple(v) for v in values)


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return tuple(range(1, value + 1))
    if isinstance(value, list) and value and all(isinstance(s, int) for s in value):
        return tuple(value)
    raise ConfigError("seeds", "a count (>= 1) or a list of integer seeds")


def _columns(value: Any) -> tuple[str, ...]:
    if value is None:
        return tuple(COLUMNS)
    if not isinstance(value, list) or any(c not in COLUMNS for c in value):
        raise ConfigError("columns", f"a list of run figures: {', '.join(COLUMNS)}")
    return tuple(value)


def _plot(data: Mapping[str, Any], index: int) -> PlotSpec:
    for key in data:
        if key not in _PLOT_KEYS:
            raise ConfigError(f"plots[{index}].{key}", "unknown plot key")
    if "x" not in data or "y" not in data:
        raise ConfigError(f"plots[{index}]", "needs x and y")
    y = data["y"]
    return PlotSpec(
        file=str(data.get("file", f"plot{index + 1}.png")),
        x=str(data["x"]),
        y=tuple(y) if isinstance(y, list) else (str(y),),
        series=str(data.get("series", "")),
        variants=tuple(str(v) for v in data.get("variants", ())),
        title=str(data.get("title", "")),
        xlabel=str(data.get("xlabel", "")),
        ylabel=str(data.get("ylabel", "")),
        logx=bool(data.get("logx", False)),
        logy=bool(data.get("logy", False)),
    )
