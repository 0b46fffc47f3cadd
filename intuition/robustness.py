"""Every finding over more draws of base seeds than the workspace's own (robustness.json, written by
`make robustness`): the per-seed metrics of each draw, each experiment's fingerprint (what decides
its metrics besides the base seed), and the current findings.yaml checked on them with
intuition.findings' own code, so a changed threshold needs no new run. Pure: the record comes in
and goes out as data; the report stage, tools.validate and tools.robustness read and write it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from intuition import files
from intuition.config import ParamsError, point_key
from intuition.findings import Finding, Findings, Outcome, Side, evaluate_finding, split_metric

ROBUSTNESS_FILE = Path("robustness.json")  # every finding over several base seeds (tools.robustness)

ABOUT = ("every finding of findings.yaml over more base seeds (params.yaml `seed`) than the "
         "workspace's own: per draw, the per-seed metrics of every experiment a finding names and "
         "its fingerprint (its params, its dataset's, `seeds` and the base seed); the report checks "
         "the current findings.yaml on them. Written by `make robustness`")
KEPT_COLUMNS = ("seed", "learned")  # of seeds.csv, besides every metric column <group>.<name>


# Knobs added after draws were recorded: at their default they change no result, so they are left
# out of the fingerprint and a draw recorded before them stays current.
LATER_KNOBS = ("l1", "l2")


def _setup(spec) -> dict:
    setup = spec.model_dump(mode="json")
    for knob in LATER_KNOBS:
        if setup[knob] == type(spec).model_fields[knob].default:
            del setup[knob]
    return setup


@dataclass(frozen=True)
class Setups:
    """What decides each experiment's per-seed metrics besides the base seed: its params and its
    dataset's (plain data), and the number of seeds. Not the findings' thresholds."""

    experiments: Mapping[str, object]
    seeds: int

    @classmethod
    def of(cls, params) -> Setups:
        """Every experiment's and sweep point's setup (a sweep with its own `seeds` says so)."""
        setups = {key: {"experiment": _setup(spec), "dataset": params.datasets[spec.dataset].model_dump(mode="json")}
                  for key, spec in params.experiments.items()}
        for sweep in params.sweeps:
            seeds = {"seeds": params.sweeps[sweep].seeds} if params.sweeps[sweep].seeds else {}
            setups |= {point_key(sweep, p.name): {"experiment": _setup(p.spec), **seeds,
                                                  "dataset": params.datasets[p.spec.dataset].model_dump(mode="json")}
                       for p in params.sweep_points(sweep)}
        return cls(setups, params.seeds)

    def fingerprint(self, experiment: str, base_seed: int) -> str | None:
        """A short hash of what decides an experiment's results with `base_seed`; None for an
        experiment params.yaml does not define."""
        if experiment not in self.experiments:
            return None
        content = {"setup": self.experiments[experiment], "seeds": self.seeds, "base_seed": base_seed}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Draw:
    """One draw of base seeds: each experiment's per-seed table, as `evaluate` takes them."""

    base_seed: int
    tables: Mapping[str, pd.DataFrame]
    recorded: bool = False               # read from robustness.json, not from results/
    stale: frozenset[str] = frozenset()  # experiments whose params changed since it was recorded


def named_experiments(findings: Findings) -> list[str]:
    """Every experiment some finding names, sorted: those robustness.json keeps."""
    return sorted(set().union(*(f.experiments() for f in findings.findings)))


def _json_cell(value):
    """A seeds.csv cell as robustness.json keeps it: numbers to SIGNIFICANT_DIGITS, NaN as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return files.rounded(value)


def _rows(table: pd.DataFrame) -> list[dict]:
    """seeds.csv's rows: seed, learned and every metric column (<group>.<name>)."""
    columns = [c for c in table.columns if c in KEPT_COLUMNS or "." in str(c)]
    return [{c: _json_cell(v) for c, v in row.items()} for row in table[columns].to_dict("records")]


def robustness_record(findings: Findings, draws: Sequence[Draw], setups: Setups, written: str) -> dict:
    """robustness.json's content: per draw (base seed), every experiment a finding names with its
    fingerprint (Setups.fingerprint) and its seeds.csv rows. No verdicts: the report checks the
    findings.yaml of its day on these numbers."""
    experiments = named_experiments(findings)
    return {"about": ABOUT, "written": written, "base_seeds": [d.base_seed for d in draws],
            "seeds": setups.seeds,
            "draws": [{"base_seed": d.base_seed,
                       "experiments": {e: {"fingerprint": setups.fingerprint(e, d.base_seed),
                                           "rows": _rows(d.tables[e])}
                                       for e in experiments if e in d.tables}}
                      for d in draws]}


def _recorded_draw(entry: Mapping, setups: Setups) -> Draw:
    base_seed, experiments = entry["base_seed"], entry["experiments"]
    tables = {e: pd.DataFrame(x["rows"]) for e, x in experiments.items()}
    stale = frozenset(e for e, x in experiments.items()
                      if x["fingerprint"] != setups.fingerprint(e, base_seed))
    return Draw(base_seed, tables, recorded=True, stale=stale)


def recorded_draws(record: Mapping | None, setups: Setups, live_seed: int) -> list[Draw]:
    """The draws of robustness.json's content (None: no such file) but the one of `live_seed`, the
    workspace's own base seed (its results/ are that draw); each knows its stale experiments."""
    if record is None:
        return []
    if not isinstance(record.get("draws"), list):
        raise ParamsError(f"{ROBUSTNESS_FILE}: no `draws` list: not written by `make robustness`; "
                          "run it again (or delete the file)")
    draws = []
    for i, entry in enumerate(record["draws"]):
        try:
            draws.append(_recorded_draw(entry, setups))
        except (KeyError, TypeError) as exc:
            raise ParamsError(f"{ROBUSTNESS_FILE}: draws[{i}]: malformed ({type(exc).__name__}: "
                              f"{exc}); run `make robustness` again (or delete the file)") from None
    return [d for d in draws if d.base_seed != live_seed]


def _mean(side: Side) -> str:
    return "n/a" if math.isnan(side.mean) else f"{side.mean:.3f}"


@dataclass(frozen=True)
class InDraw:
    """A finding in one draw of base seeds, checked with the current findings.yaml."""

    base_seed: int
    outcome: Outcome                 # 'not measured' when stale
    recorded: bool = False           # a draw of robustness.json, not the workspace's own
    stale: tuple[str, ...] = ()      # its experiments whose params changed since the draw

    @property
    def measured(self) -> bool:
        return not self.stale and self.outcome.status != "not measured"

    @property
    def differs(self) -> bool:
        """Measured, with another status than findings.yaml records (`expect`)."""
        return self.measured and not self.outcome.as_recorded

    def line(self) -> str:
        """E.g. 'base seed 7: does not hold (2/3 seeds, 0.833 vs 0.800)'."""
        head = f"base seed {self.base_seed}: "
        if self.stale:
            return head + (f"stale: {', '.join(self.stale)} changed since {ROBUSTNESS_FILE} was "
                           "written (rerun `make robustness`)")
        if self.outcome.status == "not measured":
            return head + f"not measured over base seeds ({self.outcome.note.removeprefix('not measured: ')})"
        checks = "; ".join(f"{c.k}/{c.n} seeds, {_mean(c.a)}" + (f" vs {_mean(c.b)}" if c.b else "")
                           for c in self.outcome.checks)
        return head + f"{self.outcome.status} ({checks})"


InDraws = dict[str, tuple[InDraw, ...]]  # per finding id: the finding in each draw, in draw order


def _lacking(finding: Finding, tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """The metrics a finding checks that a recorded draw has no column for (added since)."""
    paths = dict.fromkeys(p for c in finding.checks for p in (c.metric, c.than) if p is not None)
    return [p for p in paths if split_metric(p)[0] in tables
            and split_metric(p)[1] not in tables[split_metric(p)[0]].columns]


def _in_draw(finding: Finding, findings: Findings, draw: Draw, knobs: Mapping[str, Mapping]) -> InDraw:
    if stale := tuple(sorted(finding.experiments() & draw.stale)):
        note = f"not measured: {', '.join(stale)} changed since {ROBUSTNESS_FILE} was written"
        return InDraw(draw.base_seed, Outcome(finding, "not measured", note=note), True, stale)
    if draw.recorded and (lacking := _lacking(finding, draw.tables)):
        note = f"not measured: {ROBUSTNESS_FILE} has no {', '.join(lacking)}"
        return InDraw(draw.base_seed, Outcome(finding, "not measured", note=note), True)
    return InDraw(draw.base_seed, evaluate_finding(finding, findings, draw.tables, knobs), draw.recorded)


def evaluate_draws(findings: Findings, draws: Sequence[Draw], knobs: Mapping[str, Mapping]) -> InDraws:
    """Every finding in every draw, checked with the current findings.yaml by `evaluate`'s rules;
    a finding on a stale experiment of a recorded draw is not checked there."""
    return {f.id: tuple(_in_draw(f, findings, d, knobs) for d in draws) for f in findings.findings}


def draw_failures(in_draws: InDraws) -> list[str]:
    """For `make validate`: one line per finding and recorded draw whose status differs from its
    `expect` (the workspace's own draw is `failures`' business)."""
    return [f"finding {d.outcome.finding.id} ({d.outcome.finding.source}, expect: "
            f"{d.outcome.finding.expect}) in {ROBUSTNESS_FILE}: {d.line()}"
            for draws in in_draws.values() for d in draws if d.recorded and d.differs]


def stale_warning(in_draws: InDraws) -> str | None:
    """One line naming the experiments (findings name) that changed since robustness.json was
    written, and the base seeds whose draws are stale; None when none is."""
    stale = [d for draws in in_draws.values() for d in draws if d.stale]
    if not stale:
        return None
    experiments = sorted(set().union(*(d.stale for d in stale)))
    return (f"warning: {', '.join(experiments)} changed since {ROBUSTNESS_FILE} was written: the "
            f"findings on {'it' if len(experiments) == 1 else 'them'} are not checked with "
            f"{_with_base(stale)}; rerun `make robustness`")


@dataclass(frozen=True)
class Draws:
    """A finding over base seeds, as report/findings.md shows it."""

    text: str                   # 'held in 2 of 3 draws (base seeds 42, 7, 2026)', or why not known
    cell: str                   # the summary table's column: '2/3', '–' or 'stale'
    details: tuple[str, ...] = ()  # one line per draw: its status, per check k/n seeds and means


def _with_base(draws: Sequence[InDraw]) -> str:
    """'base seed 7' or 'base seeds 42, 7, 2026' (each base seed once, in order)."""
    seeds = list(dict.fromkeys(str(d.base_seed) for d in draws))
    return f"base {'seed' if len(seeds) == 1 else 'seeds'} {', '.join(seeds)}"


def _over(finding: Finding, draws: Sequence[InDraw]) -> Draws:
    recorded = [d for d in draws if d.recorded]
    details = tuple(d.line() for d in draws) if recorded else ()
    if not any(d.measured for d in recorded):
        if stale := sorted(set().union(*(d.stale for d in recorded))):
            return Draws(f"stale: {', '.join(stale)} changed since {ROBUSTNESS_FILE} was written "
                         "(rerun `make robustness`)", "stale", details)
        return Draws("not measured over base seeds (`make robustness` measures it)", "–", details)
    measured = [d for d in draws if d.measured]
    held = sum(d.outcome.status == "holds" for d in measured)
    text = f"held in {held} of {len(measured)} draws ({_with_base(measured)})"
    if off := [d for d in measured if d.differs]:
        text += f"; not as recorded (expect: {finding.expect}) with {_with_base(off)}"
    if left := [d for d in draws if not d.measured]:
        text += f"; not counted: {_with_base(left)} (stale or not measured)"
    return Draws(text, f"{held}/{len(measured)}" + (" ⚠️" if off else ""), details)


def over_base_seeds(findings: Findings, in_draws: InDraws) -> dict[str, Draws]:
    """Each finding's Draws (evaluate_draws: the workspace's draw first, then robustness.json's):
    held in k of n draws, 'not measured over base seeds' when no recorded draw measured it, or
    'stale' when its experiments changed since they were."""
    return {f.id: _over(f, in_draws[f.id]) for f in findings.findings}
