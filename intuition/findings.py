"""The notebook's conclusions as data (findings.yaml), checked against measured metrics. Pure."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from intuition.config import ParamsError, Strict

FINDINGS_FILE = Path("findings.yaml")
COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


class Check(Strict):
    metric: str  # <experiment>.<path in metrics.json>, e.g. linear_perceptron.test.accuracy
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
        return self

    def experiments(self) -> set[str]:
        return {m.split(".", 1)[0] for m in (self.metric, self.than) if m}


class Finding(Strict):
    id: str
    claim: str
    checks: Annotated[list[Check], Field(min_length=1)]


class Findings(Strict):
    findings: list[Finding]


@dataclass(frozen=True)
class Outcome:
    finding: Finding
    status: Literal["holds", "does not hold", "not measured"]
    evidence: list[str]


def load_findings(path: Path = FINDINGS_FILE) -> Findings:
    try:
        return Findings.model_validate(yaml.safe_load(Path(path).read_text()))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ParamsError(f"{path}: {problems}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f"{path}: {exc}") from None


def lookup(metrics: dict[str, dict], path: str) -> float:
    experiment, *keys = path.split(".")
    node = metrics[experiment]
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            raise ParamsError(f"{FINDINGS_FILE}: {path}: no such metric in {experiment}'s metrics.json")
        node = node[key]
    return float(node)


def run_check(check: Check, metrics: dict[str, dict]) -> tuple[bool, str]:
    """Whether the check holds, and its evidence in words with the numbers."""
    a = lookup(metrics, check.metric)
    if check.than is None:
        return COMPARE[check.op](a, check.value), f"{check.metric} = {a:.3f} {check.op} {check.value}"
    b = lookup(metrics, check.than)
    if check.op == "within":
        holds, rule = abs(a - b) <= check.by, f"|difference| = {abs(a - b):.3f} <= {check.by}"
    else:
        target = b + check.by if check.op in (">=", ">") else b - check.by
        holds, rule = COMPARE[check.op](a, target), f"{a:.3f} {check.op} {b:.3f} {'+' if check.op[0] == '>' else '-'} {check.by}"
    return holds, f"{check.metric} = {a:.3f} vs {check.than} = {b:.3f}: {rule}"


def evaluate(findings: Findings, metrics: dict[str, dict]) -> list[Outcome]:
    """Check every finding; one whose experiments are not in `metrics` is 'not measured'."""
    outcomes = []
    for finding in findings.findings:
        missing = set().union(*(c.experiments() for c in finding.checks)) - metrics.keys()
        if missing:
            outcomes.append(Outcome(finding, "not measured", [f"no experiment {', '.join(sorted(missing))}"]))
            continue
        results = [run_check(check, metrics) for check in finding.checks]
        status = "holds" if all(ok for ok, _ in results) else "does not hold"
        outcomes.append(Outcome(finding, status, [("✓ " if ok else "✗ ") + text for ok, text in results]))
    return outcomes


def to_markdown(outcomes: list[Outcome]) -> str:
    lines = ["| finding | claim | evidence | verdict |", "|---|---|---|---|"]
    for o in outcomes:
        verdict = {"holds": "✅ holds", "does not hold": "❌ does not hold", "not measured": "– not measured"}[o.status]
        lines.append(f"| {o.finding.id} | {o.finding.claim} | {'<br>'.join(o.evidence)} | {verdict} |")
    return "\n".join(lines) + "\n"
