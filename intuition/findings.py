"""The notebook's conclusions, this project's controls and published claims reproduced here, as data
(findings.yaml), checked against the measured metrics of every seed. Pure: the only file read is
findings.yaml itself (the same checks on more draws of base seeds: intuition.robustness).

A check holds when it holds for the mean over seeds AND for at least `min_seeds` single seeds (a
comparison of two experiments pairs seed i with seed i). A finding that says which knob it is
about (`varies`) is also checked for confounds: every other knob in which the experiments it
compares differ. Seeds that failed to learn are named in the evidence and still counted. A finding
records whether it is expected to hold (`expect`): a published claim that does not reproduce here
stays in findings.yaml as such, with its numbers.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from intuition.config import KNOBS, ParamsError, Strict, read_yaml

# Annotations only: intuition.robustness builds on this module (a cycle at run time), and `make run`
# checks findings.yaml with this module before it plans, where pandas' import was 0.2 s of the no-op.
if TYPE_CHECKING:
    import pandas as pd

    from intuition.robustness import Draws

FINDINGS_FILE = Path("findings.yaml")
SOURCES = ("notebook", "controls", "literature")
COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
SYMBOL = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}


# ---------------------------------------------------------------------------------------- schema

class Check(Strict):
    metric: str  # <experiment>.<metric column>, e.g. linear_perceptron.test.accuracy
    op: Literal[">=", ">", "<=", "<", "within"]
    value: float | None = None
    than: str | None = None
    by: Annotated[float, Field(ge=0)] = 0.0

    @model_validator(mode="after")
    def _one_reference(self):
        if (self.value is None) == (self.than is None):
            raise ValueError("give exactly one of `value` (a number) or `than` (another metric)")
        if self.op == "within" and self.than is None:
            raise ValueError("`op: within` compares two metrics: give `than` and `by`")
        for path in (self.metric, self.than):
            if path is not None and "." not in path.strip("."):
                raise ValueError(f"{path!r}: write <experiment>.<metric>, e.g. "
                                 "linear_perceptron.test.accuracy")
        return self

    def experiments(self) -> set[str]:
        return {split_metric(m)[0] for m in (self.metric, self.than) if m}

    def rule(self) -> str:
        """The comparison in words: 'first ≥ 0.85', 'first > second + 0.05', '|first − second| ≤ 0.03'."""
        if self.than is None:
            return f"first {SYMBOL[self.op]} {self.value:g}"
        if self.op == "within":
            return f"|first − second| ≤ {self.by:g}"
        sign = "+" if self.op in (">=", ">") else "−"
        margin = f" {sign} {self.by:g}" if self.by else ""
        return f"first {SYMBOL[self.op]} second{margin}"


class Finding(Strict):
    id: str
    claim: str
    # notebook: the notebook's claim, reproduced as the notebook states it; controls: a claim this
    # project's own control experiments establish; literature: a published claim, reproduced on
    # this project's data (needs `citation`).
    source: Literal["notebook", "controls", "literature"]
    citation: str | None = None  # the publication: authors, venue and year, arXiv id, DOI or URL
    varies: str | None = None  # the knob the finding is about (one of config.KNOBS)
    min_seeds: Annotated[int, Field(strict=True, ge=1)] | None = None  # default: all seeds
    # What the committed claim says is measured: `does not hold` records a claim that does not
    # reproduce here (never tuned until it passes); `make validate` fails when the status differs.
    expect: Literal["holds", "does not hold"] = "holds"
    overturned_by: list[str] = []  # controls findings that question a notebook finding
    checks: Annotated[list[Check], Field(min_length=1)]

    def experiments(self) -> set[str]:
        return set().union(*(c.experiments() for c in self.checks))


class Findings(Strict):
    findings: list[Finding]
    n_seeds: Annotated[int, Field(strict=True, ge=1)] = 1  # seeds per experiment (params `seeds`)

    def by_id(self) -> dict[str, Finding]:
        return {f.id: f for f in self.findings}

    def required_seeds(self, finding: Finding) -> int:
        return self.n_seeds if finding.min_seeds is None else finding.min_seeds


def split_metric(path: str) -> tuple[str, str]:
    """'exp.test.accuracy' → ('exp', 'test.accuracy'); a sweep point's values may hold dots:
    'sweep[l2=0.001,width=4].test.accuracy' → ('sweep[l2=0.001,width=4]', 'test.accuracy')."""
    if "[" in path.partition(".")[0]:
        point, _, column = path.partition("].")
        return point + "]", column
    experiment, _, column = path.partition(".")
    return experiment, column


def _where(raw: object, loc: tuple) -> str:
    """A pydantic error location as the user reads it: 'finding <id>: checks[0].op'."""
    parts = list(loc)
    prefix = ""
    if len(parts) >= 2 and parts[0] == "findings" and isinstance(parts[1], int):
        items = raw.get("findings") if isinstance(raw, dict) else None
        item = items[parts[1]] if isinstance(items, list) and parts[1] < len(items) else None
        ident = item.get("id") if isinstance(item, dict) else None
        prefix = f"finding {ident}" if ident else f"findings[{parts[1]}]"
        parts = parts[2:]
    text = ""
    for p in parts:
        if str(p).startswith("function-after"):
            continue
        text += f"[{p}]" if isinstance(p, int) else f".{p}"
    text = text.lstrip(".")
    return f"{prefix}: {text}" if prefix and text else prefix or text or "top level"


def _describe(error: dict, raw: object) -> str:
    where, kind, value = _where(raw, error["loc"]), error["type"], error.get("input")
    if kind == "missing":
        hint = f"; use one of: {', '.join(SOURCES)}" if error["loc"][-1] == "source" else ""
        return f"{where}: missing key{hint}"
    if kind == "extra_forbidden":
        model = Check if "checks" in error["loc"] else Finding if len(error["loc"]) > 2 else Findings
        allowed = [k for k in model.model_fields if k != "n_seeds"]
        return f"{where}: unknown key (value {value!r}); allowed keys: {', '.join(allowed)}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"{where}: {value!r} is not allowed; use one of: {expected}"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"


def parse_findings(raw: object, experiments: Iterable[str], n_seeds: int,
                   source: Path | str = FINDINGS_FILE) -> Findings:
    """findings.yaml's content, validated against the experiments of params.yaml and its number
    of seeds. Raises ParamsError with one line per problem, before any metric is read."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping with a `findings` list, got {raw!r}")
    if not isinstance(n_seeds, int) or n_seeds < 1:
        raise ParamsError(f"{source}: n_seeds must be a positive number of seeds, got {n_seeds!r}")
    if "n_seeds" in raw:
        raise ParamsError(f"{source}: n_seeds: unknown key; the number of seeds is params.yaml `seeds`")
    try:
        findings = Findings.model_validate({**raw, "n_seeds": n_seeds})
    except ValidationError as exc:
        lines = [f"{source}: {_describe(e, raw)}" for e in exc.errors()]
        raise ParamsError("\n".join(dict.fromkeys(lines))) from None

    experiments = set(experiments)
    problems: list[str] = []
    seen: set[str] = set()
    by_id = findings.by_id()
    for f in findings.findings:
        where = f"{source}: finding {f.id}"
        if f.id in seen:
            problems.append(f"{where}: id: {f.id!r} is used by more than one finding; ids must be unique")
        seen.add(f.id)
        for i, check in enumerate(f.checks):
            for key in ("metric", "than"):
                path = getattr(check, key)
                if path is not None and split_metric(path)[0] not in experiments:
                    problems.append(
                        f"{where}: checks[{i}].{key}: {path!r} names no experiment "
                        f"{split_metric(path)[0]!r}; defined experiments: {', '.join(sorted(experiments))}")
        if f.source == "literature" and f.citation is None:
            problems.append(f"{where}: citation: missing; a `source: literature` finding names the "
                            "publication it reproduces, e.g. citation: \"Hein, Andriushchenko & "
                            "Bitterwolf, CVPR 2019, arXiv 1812.05720\"")
        elif f.citation is not None and not f.citation.strip():
            problems.append(f"{where}: citation: is empty; give the publication (authors, venue and "
                            "year, arXiv id, DOI or URL), or leave the key out")
        if f.varies is not None and f.varies not in KNOBS:
            problems.append(f"{where}: varies: {f.varies!r} is not a knob; use one of: {', '.join(KNOBS)}")
        if f.min_seeds is not None and f.min_seeds > n_seeds:
            problems.append(f"{where}: min_seeds: {f.min_seeds} is more than the {n_seeds} seeds "
                            f"(params `seeds`); use 1 to {n_seeds}, or leave it out for all seeds")
        if f.overturned_by and f.source != "notebook":
            problems.append(f"{where}: overturned_by: only a `source: notebook` finding can be "
                            "overturned (by controls findings); remove it or set source: notebook")
        for ident in f.overturned_by:
            if ident not in by_id:
                problems.append(f"{where}: overturned_by: {ident!r} is not a finding; "
                                f"defined findings: {', '.join(by_id)}")
            elif by_id[ident].source != "controls":
                problems.append(f"{where}: overturned_by: {ident!r} is a {by_id[ident].source} "
                                "finding; only `source: controls` findings can overturn one")
    if problems:
        raise ParamsError("\n".join(dict.fromkeys(problems)))
    return findings


def load_findings(path: Path | str, experiments: Iterable[str], n_seeds: int) -> Findings:
    """Read and validate findings.yaml (see parse_findings)."""
    return parse_findings(read_yaml(path), experiments, n_seeds, path)


def load_findings_for(params, path: Path | str = FINDINGS_FILE) -> Findings:
    """findings.yaml checked against a loaded params.yaml (its experiments, sweep points and `seeds`)."""
    return load_findings(path, params.specs(), params.seeds)


def knobs_of(params) -> dict[str, dict]:
    """Each experiment's and sweep point's knobs (ExperimentSpec.knobs()), the `knobs` argument of evaluate()."""
    return {key: spec.knobs() for key, spec in params.specs().items()}


# -------------------------------------------------------------------------------------- outcomes

@dataclass(frozen=True)
class Side:
    """One side of a check: a metric of one experiment over its seeds."""

    metric: str                      # <experiment>.<metric column>
    values: tuple[float, ...]        # in seed order
    failed_seeds: tuple[int, ...]    # seeds that failed to learn (still counted)

    @property
    def experiment(self) -> str:
        return split_metric(self.metric)[0]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))  # a NaN seed makes the mean NaN: never skipped

    @property
    def sd(self) -> float:
        """Sample standard deviation (ddof=1); 0 for one seed."""
        return float(np.std(self.values, ddof=1)) if self.n > 1 else 0.0

    def summary(self) -> str:
        seeds = "seed" if self.n == 1 else "seeds"
        return f"{self.metric}: {self.mean:.3f} ± {self.sd:.3f} ({self.n} {seeds})"

    def failed_to_learn(self) -> str | None:
        if not self.failed_seeds:
            return None
        word = "seed" if len(self.failed_seeds) == 1 else "seeds"
        return f"{self.experiment}: {word} {', '.join(map(str, self.failed_seeds))} failed to learn"


@dataclass(frozen=True)
class CheckOutcome:
    check: Check
    a: Side
    b: Side | None                    # None when the check compares with a number
    per_seed: tuple[bool, ...]        # whether the check holds for seed i (paired with seed i)
    mean_holds: bool                  # whether it holds for the means over seeds
    min_seeds: int

    @property
    def k(self) -> int:
        return sum(self.per_seed)

    @property
    def n(self) -> int:
        return len(self.per_seed)

    @property
    def holds(self) -> bool:
        return self.mean_holds and self.k >= self.min_seeds

    def failed_to_learn(self) -> list[str]:
        sides = [self.a] if self.b is None or self.b.experiment == self.a.experiment else [self.a, self.b]
        return [text for side in sides if (text := side.failed_to_learn())]

    def text(self) -> str:
        """E.g. 'a.test.accuracy: 0.900 ± 0.010 (5 seeds) vs b.test.accuracy: 0.800 ± 0.020 (5 seeds),
        needs first > second + 0.05 — holds in 4/5 seeds (needs 5)'."""
        c = self.check
        if self.b is None:
            compared = f"{self.a.summary()} {SYMBOL[c.op]} {c.value:g}"
        else:
            compared = f"{self.a.summary()} vs {self.b.summary()}, needs {c.rule()}"
        needs = "" if self.min_seeds == self.n else f" (needs {self.min_seeds})"
        mean = "" if self.mean_holds else "; does not hold on the mean"
        return f"{compared} — holds in {self.k}/{self.n} seeds{needs}{mean}"


@dataclass(frozen=True)
class Confound:
    """Two experiments a finding compares, the values of the knob it varies, and every other knob
    in which they differ."""

    a: str
    b: str
    varies: str
    varied: tuple[object, object]                     # the varied knob's values in a and b
    differences: tuple[tuple[str, object, object], ...]  # (knob, value in a, value in b)

    def text(self) -> str:
        also = ", ".join(f"{knob} {va} vs {vb}" for knob, va, vb in self.differences)
        va, vb = self.varied
        head = f"{self.a} vs {self.b}"
        head += f" ({self.varies} {va} vs {vb})" if va != vb else f" (same {self.varies}: {va})"
        return f"{head}: also differs in {also}" if also else f"{head}: differs in nothing else"


@dataclass(frozen=True)
class Outcome:
    finding: Finding
    status: Literal["holds", "does not hold", "not measured"]
    checks: tuple[CheckOutcome, ...] = ()
    pairs: tuple[Confound, ...] = ()  # every compared pair, confounded or not (findings with `varies`)
    note: str = ""                    # why not measured

    @property
    def confounds(self) -> tuple[Confound, ...]:
        return tuple(p for p in self.pairs if p.differences)

    @property
    def confounded(self) -> bool:
        return bool(self.confounds)

    @property
    def evidence(self) -> list[str]:
        """One line per check (✓ / ✗), its failed-to-learn seeds, then the confounds."""
        if self.status == "not measured":
            return [self.note]
        lines = []
        for c in self.checks:
            lines.append(("✓ " if c.holds else "✗ ") + c.text())
            lines += [f"  ⚠ {text}" for text in c.failed_to_learn()]
        lines += [f"confounded: {p.text()}" for p in self.confounds]
        return lines

    @property
    def as_recorded(self) -> bool:
        """Whether the measured status is the one findings.yaml records (`expect`)."""
        return self.status == self.finding.expect

    def short_verdict(self) -> str:
        return self._verdict(None)

    def verdict(self) -> str:
        return self._verdict("; ".join(p.text() for p in self.confounds))

    def _verdict(self, also: str | None) -> str:
        """`also`: the confounds spelled out, or None to only say "confounded"."""
        if self.status == "not measured":
            return "– not measured"
        confounded = ("" if not self.confounded else " (and confounded)" if also is None
                      else f" (and confounded: {also})")
        if self.status == "does not hold":
            head = "➖ does not reproduce here (as recorded)" if self.as_recorded else "❌ does not hold"
            return head + confounded
        if not self.as_recorded:
            return "❌ holds, but findings.yaml records it as not reproducing here" + confounded
        if self.confounded:
            return "⚠️ holds as measured, but confounded" + ("" if also is None else f": {also}")
        return "✅ holds"


# ------------------------------------------------------------------------------------ evaluation

def _learned(frame: pd.DataFrame, experiment: str) -> np.ndarray:
    if "learned" not in frame.columns:
        raise ParamsError(f"{experiment}: the per-seed table has no `learned` column, so seeds "
                          "that failed to learn cannot be named; columns: " + ", ".join(map(str, frame.columns)))
    col = frame["learned"]
    if col.dtype == object:
        col = col.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes"))
    return col.fillna(False).astype(bool).to_numpy()


def _seed_ordered(frame: pd.DataFrame, experiment: str, n_seeds: int) -> pd.DataFrame:
    """The table sorted by seed; it must hold exactly seeds 0..n_seeds-1 (pairing is by seed)."""
    if "seed" not in frame.columns:
        raise ParamsError(f"{experiment}: the per-seed table has no `seed` column; "
                          "columns: " + ", ".join(map(str, frame.columns)))
    seeds = sorted(int(s) for s in frame["seed"])
    if seeds != list(range(n_seeds)):
        raise ParamsError(f"{experiment}: the per-seed table has seeds {seeds}, expected 0 to "
                          f"{n_seeds - 1} (params `seeds`: {n_seeds}); rerun the pipeline")
    return frame.assign(seed=frame["seed"].astype(int)).sort_values("seed").reset_index(drop=True)


def _side(finding: Finding, path: str, tables: Mapping[str, pd.DataFrame]) -> Side:
    experiment, column = split_metric(path)
    frame = tables[experiment]
    if column not in frame.columns:
        available = [c for c in frame.columns if c not in ("seed", "learned")]
        raise ParamsError(f"{FINDINGS_FILE}: finding {finding.id}: {path}: no such metric "
                          f"{column!r} for {experiment}; available: {', '.join(map(str, available))}")
    from pandas import to_numeric  # here, not at the top: `make run` checks findings.yaml with
    # this module before its plan, and a no-op run has no other use for pandas (0.2 s of its ~2 s)

    values = tuple(float(v) for v in to_numeric(frame[column], errors="coerce"))
    learned = _learned(frame, experiment)
    failed = tuple(int(s) for s, ok in zip(frame["seed"], learned) if not ok)
    return Side(path, values, failed)


def _run(check: Check, a: Side, b: Side | None, min_seeds: int) -> CheckOutcome:
    def holds(x: float, y: float | None) -> bool:
        if math.isnan(x) or (y is not None and math.isnan(y)):
            return False  # a NaN (exploded loss) never satisfies a check
        if check.than is None:
            return bool(COMPARE[check.op](x, check.value))
        if check.op == "within":
            return abs(x - y) <= check.by
        target = y + check.by if check.op in (">=", ">") else y - check.by
        return bool(COMPARE[check.op](x, target))

    others = b.values if b is not None else (None,) * a.n
    per_seed = tuple(holds(x, y) for x, y in zip(a.values, others))  # seed i with seed i
    mean_holds = holds(a.mean, b.mean if b is not None else None)
    return CheckOutcome(check, a, b, per_seed, mean_holds, min_seeds)


def _pairs(finding: Finding, knobs: Mapping[str, Mapping]) -> tuple[Confound, ...]:
    if finding.varies is None:
        return ()
    pairs, seen = [], set()
    for check in finding.checks:
        if check.than is None:
            continue
        a, b = split_metric(check.metric)[0], split_metric(check.than)[0]
        if a == b or frozenset((a, b)) in seen:
            continue
        seen.add(frozenset((a, b)))
        for exp in (a, b):
            if exp not in knobs:
                raise ParamsError(f"{FINDINGS_FILE}: finding {finding.id}: no knobs for experiment "
                                  f"{exp!r} (confounds cannot be checked)")
        ka, kb = knobs[a], knobs[b]
        diffs = tuple((k, ka.get(k), kb.get(k)) for k in KNOBS
                      if k != finding.varies and ka.get(k) != kb.get(k))
        varied = (ka.get(finding.varies), kb.get(finding.varies))
        pairs.append(Confound(a, b, finding.varies, varied, diffs))
    return tuple(pairs)


def evaluate(findings: Findings, per_seed: Mapping[str, pd.DataFrame],
             knobs: Mapping[str, Mapping]) -> list[Outcome]:
    """Check every finding on the per-seed tables (one row per seed, column `seed` = 0..n-1, metric
    columns such as `test.accuracy`, and `learned`). A finding naming an experiment that is not in
    `per_seed` is 'not measured'; a metric column that does not exist raises ParamsError."""
    return [evaluate_finding(finding, findings, per_seed, knobs) for finding in findings.findings]


def evaluate_finding(finding: Finding, findings: Findings, per_seed: Mapping[str, pd.DataFrame],
                     knobs: Mapping[str, Mapping]) -> Outcome:
    """One finding of `findings` checked on the per-seed tables (see evaluate)."""
    pairs = _pairs(finding, knobs)
    if missing := finding.experiments() - per_seed.keys():
        note = f"not measured: no per-seed results for {', '.join(sorted(missing))}"
        return Outcome(finding, "not measured", pairs=pairs, note=note)
    tables = {exp: _seed_ordered(per_seed[exp], exp, findings.n_seeds) for exp in finding.experiments()}
    need = findings.required_seeds(finding)
    results = []
    for check in finding.checks:
        a = _side(finding, check.metric, tables)
        b = _side(finding, check.than, tables) if check.than is not None else None
        results.append(_run(check, a, b, need))
    status = "holds" if all(r.holds for r in results) else "does not hold"
    return Outcome(finding, status, tuple(results), pairs)


# Policy for `make validate`: a finding fails when its measured status differs from the one
# findings.yaml records (`expect`, default `holds`): a finding expected to hold that does not, or
# one recorded as not reproducing (`expect: does not hold`) that now holds. Either way the committed
# claim no longer says what is measured; CI proves the pipeline still says the same measured things,
# "this published claim does not reproduce here" included. A finding not measured fails.
# A confounded finding fails only if it is the project's own (`source: controls`), or a
# `source: literature` finding that names the knob it is about (`varies`: only then are its
# experiments compared knob by knob): such a comparison must differ in that knob and nothing else.
# A `source: notebook` finding that holds but is confounded does NOT fail: the notebook's experiment
# is reproduced faithfully as it was run, and the report shows it as "holds as measured, but
# confounded" next to the controls that question the notebook's interpretation (`overturned_by`).
def failures(outcomes: list[Outcome]) -> list[str]:
    """One line per finding that makes `make validate` fail, saying why."""
    lines = []
    for o in outcomes:
        f = o.finding
        if o.status == "not measured":
            lines.append(f"finding {f.id} ({f.source}): {o.note}")
            continue
        if o.status == "does not hold" and not o.as_recorded:
            failed = [c for c in o.checks if not c.holds]
            lines.append(f"finding {f.id} ({f.source}) does not hold: {f.claim}\n    "
                         + "\n    ".join(c.text() for c in failed))
        elif not o.as_recorded:
            lines.append(f"finding {f.id} ({f.source}) holds, but findings.yaml records it as not "
                         f"reproducing here (expect: does not hold): {f.claim}\n    "
                         + "\n    ".join(c.text() for c in o.checks))
        if f.source != "notebook" and o.confounded:
            what = "a control" if f.source == "controls" else "a literature finding with `varies`"
            lines.append(f"finding {f.id} ({f.source}) is confounded: {what} must differ only in "
                         f"{f.varies}\n    " + "\n    ".join(p.text() for p in o.confounds))
    return lines


# -------------------------------------------------------------------------------------- markdown

# An identifier in a citation, and the address it links to.
LINKS = ((re.compile(r"arXiv[:\s]*(\d{4}\.\d{4,5})", re.IGNORECASE), "https://arxiv.org/abs/{}"),
         (re.compile(r"\b(10\.\d{4,9}/[^\s,;]+)"), "https://doi.org/{}"),
         (re.compile(r"(https?://[^\s,;]+)"), "{}"))


def citation_link(citation: str) -> tuple[str, str | None]:
    """A citation's text, and the address of the arXiv id, DOI or URL it names (None if none)."""
    for pattern, address in LINKS:
        if found := pattern.search(citation):
            return citation.strip(), address.format(found.group(1).rstrip('.)'))
    return citation.strip(), None


def cited(citation: str | None) -> str:
    """A citation as Markdown, linked to its arXiv id, DOI or URL when it names one; '–' for none."""
    if not citation:
        return "–"
    text, address = citation_link(citation)
    text = text.replace("|", "\\|")
    return f"[{text}]({address})" if address else text


def to_markdown(outcomes: list[Outcome], draws: Mapping[str, Draws] | None = None) -> str:
    """report/findings.md: a summary table, then one section per finding with its evidence. With
    `draws` (over_base_seeds), how many draws of base seeds each finding held in."""
    by_id = {o.finding.id: o for o in outcomes}
    over = " base-seed draws held |" if draws is not None else ""
    lines = [f"| finding | source | varies | verdict |{over} citation |",
             "|---|---|---|---|" + ("---|" if draws is not None else "") + "---|"]
    for o in outcomes:
        f = o.finding
        held = f" {draws[f.id].cell} |" if draws is not None else ""
        lines.append(f"| [{f.id}](#{f.id}) | {f.source} | {f.varies or '–'} | {o.short_verdict()} |"
                     f"{held} {cited(f.citation)} |")
    for o in outcomes:
        f = o.finding
        lines += ["", f"## {f.id}", "", f"**Claim** ({f.source}): {f.claim}", ""]
        if f.citation:
            lines += [f"**Citation:** {cited(f.citation)}", ""]
        if f.varies:
            lines += [f"**Varies:** {f.varies}", ""]
        if o.status == "not measured":
            lines.append(f"- {o.note}")
        for c in o.checks:
            lines.append(f"- {'✓' if c.holds else '✗'} {c.text()}")
            lines += [f"  - ⚠ {text} (still counted)" for text in c.failed_to_learn()]
        lines += [f"- compares {p.text()}" for p in o.pairs]
        lines += ["", f"**Verdict:** {o.verdict()}"]
        if draws is not None:
            lines += ["", f"**Over base seeds:** {draws[f.id].text}"]
            lines += [f"- {line}" for line in draws[f.id].details]
        if f.overturned_by:
            refs = ", ".join(f"{i} ({by_id[i].short_verdict()})" if i in by_id else f"{i} (not evaluated)"
                             for i in f.overturned_by)
            lines += ["", f"**Controls:** see {refs}"]
    return "\n".join(lines) + "\n"
