"""findings.yaml: the schema, the comparisons, and that the shipped findings name real metrics."""

import pytest

from intuition.config import ParamsError, load_params
from intuition.findings import Check, Finding, Findings, evaluate, load_findings, run_check, to_markdown

METRICS = {
    "a": {"test": {"accuracy": 0.90}, "sharpness": {"mean_max_probability": 0.95}},
    "b": {"test": {"accuracy": 0.45}, "sharpness": {"mean_max_probability": 0.60}},
}


@pytest.mark.parametrize("check, holds", [
    ({"metric": "a.test.accuracy", "op": ">=", "value": 0.9}, True),
    ({"metric": "a.test.accuracy", "op": ">", "value": 0.9}, False),
    ({"metric": "b.test.accuracy", "op": "<=", "value": 0.6}, True),
    ({"metric": "a.test.accuracy", "op": ">=", "than": "b.test.accuracy", "by": 0.45}, True),
    ({"metric": "a.test.accuracy", "op": ">=", "than": "b.test.accuracy", "by": 0.46}, False),
    ({"metric": "b.test.accuracy", "op": "<", "than": "a.test.accuracy", "by": 0.4}, True),
    ({"metric": "b.test.accuracy", "op": "<", "than": "a.test.accuracy", "by": 0.5}, False),
    ({"metric": "a.test.accuracy", "op": "within", "than": "b.test.accuracy", "by": 0.5}, True),
    ({"metric": "a.test.accuracy", "op": "within", "than": "b.test.accuracy", "by": 0.4}, False),
])
def test_comparisons(check, holds):
    ok, evidence = run_check(Check(**check), METRICS)
    assert ok is holds
    assert check["metric"] in evidence and f"{METRICS[check['metric'][0]]['test']['accuracy']:.3f}" in evidence


@pytest.mark.parametrize("bad", [
    {"metric": "a.test.accuracy", "op": ">="},                                        # no reference
    {"metric": "a.test.accuracy", "op": ">=", "value": 1, "than": "b.test.accuracy"},  # both
    {"metric": "a.test.accuracy", "op": "within", "value": 1},                        # within a number
    {"metric": "a.test.accuracy", "op": "~", "value": 1},                             # unknown op
    {"metric": "a.test.accuracy", "op": ">", "than": "b.test.accuracy", "by": -1},    # negative margin
])
def test_bad_checks_are_rejected(bad):
    with pytest.raises(ValueError):
        Check(**bad)


def test_unknown_metric_path_names_it():
    with pytest.raises(ParamsError, match="a.test.precision: no such metric"):
        run_check(Check(metric="a.test.precision", op=">", value=0), METRICS)


def test_a_finding_fails_if_one_check_fails_and_missing_experiments_are_not_measured():
    findings = Findings(findings=[
        Finding(id="mixed", claim="c1", checks=[Check(metric="a.test.accuracy", op=">", value=0.5),
                                               Check(metric="b.test.accuracy", op=">", value=0.5)]),
        Finding(id="absent", claim="c2", checks=[Check(metric="zzz.test.accuracy", op=">", value=0.5)]),
    ])
    outcomes = evaluate(findings, METRICS)
    assert [o.status for o in outcomes] == ["does not hold", "not measured"]
    assert outcomes[0].evidence[0].startswith("✓") and outcomes[0].evidence[1].startswith("✗")
    table = to_markdown(outcomes)
    assert "| mixed | c1 |" in table and "does not hold" in table and "not measured" in table


def test_shipped_findings_name_existing_experiments_and_metrics():
    params = load_params()
    findings = load_findings()
    assert len(findings.findings) >= 7
    fake = {key: {"test": {"accuracy": 0.5}, "sharpness": {"mean_max_probability": 0.5}}
            for key in params.experiments}
    assert {o.status for o in evaluate(findings, fake)} <= {"holds", "does not hold"}
