"""findings.yaml over seeds: the schema and its errors, comparisons per seed and on the mean,
pairing seed i with seed i, confounds, failed-to-learn seeds, literature findings and `expect`, the
validate policy and the report.
Pure unit tests on hand-built per-seed tables: nothing is trained."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from intuition.config import KNOBS, ParamsError, load_params
from intuition.findings import (
    FINDINGS_FILE, Check, CheckOutcome, Outcome, cited, evaluate, failures, knobs_of, load_findings,
    load_findings_for, parse_findings, to_markdown,
)

N = 5
BASE_KNOBS = {"dataset": "spiral", "depth": 1, "width": "64", "activation": "relu",
              "output": "softmax 3", "optimizer": "adam", "learning_rate": 0.01, "batch_size": 32,
              "epochs": 500, "validation_split": 0.2, "inputs": "raw"}


def table(accuracy, learned=None, seeds=None, **columns) -> pd.DataFrame:
    """A per-seed table as evaluation writes it: one row per seed, flattened metric columns."""
    n = len(accuracy)
    return pd.DataFrame({"seed": list(range(n)) if seeds is None else seeds,
                         "test.accuracy": accuracy,
                         "learned": [True] * n if learned is None else learned, **columns})


def finding(checks, **extra) -> dict:
    return {"id": extra.pop("id", "f"), "claim": "a claim", "source": extra.pop("source", "controls"),
            "checks": checks, **extra}


def check(metric="a.test.accuracy", **kw) -> dict:
    return {"metric": metric, **kw}


def run(*findings, per_seed, knobs=None, experiments=("a", "b", "c"), n_seeds=N):
    parsed = parse_findings({"findings": list(findings)}, experiments, n_seeds)
    knobs = knobs or {e: BASE_KNOBS for e in experiments}
    return evaluate(parsed, per_seed, knobs)


def errors(raw, experiments=("a", "b"), n_seeds=N) -> list[str]:
    with pytest.raises(ParamsError) as exc:
        parse_findings(raw, experiments, n_seeds)
    return str(exc.value).splitlines()


# ------------------------------------------------------------------------------- seeds and mean

def test_mean_holds_but_one_seed_fails_with_min_seeds_all_does_not_hold():
    # mean 0.9 >= 0.85, but seed 3 is 0.80
    per_seed = {"a": table([0.95, 0.92, 0.93, 0.80, 0.90])}
    [o] = run(finding([check(op=">=", value=0.85)]), per_seed=per_seed)
    [c] = o.checks
    assert c.mean_holds and (c.k, c.n, c.min_seeds) == (4, 5, 5)
    assert c.per_seed == (True, True, True, False, True)
    assert not c.holds and o.status == "does not hold"


def test_min_seeds_4_of_5_holds():
    per_seed = {"a": table([0.95, 0.92, 0.93, 0.80, 0.90])}
    [o] = run(finding([check(op=">=", value=0.85)], min_seeds=4), per_seed=per_seed)
    assert o.status == "holds" and o.checks[0].k == 4


def test_enough_seeds_but_the_mean_fails_does_not_hold():
    per_seed = {"a": table([0.86, 0.86, 0.86, 0.86, 0.0])}  # 4 seeds hold, mean 0.688
    [o] = run(finding([check(op=">=", value=0.85)], min_seeds=4), per_seed=per_seed)
    assert o.checks[0].k == 4 and not o.checks[0].mean_holds and o.status == "does not hold"


def test_comparisons_pair_seed_i_with_seed_i_by_the_seed_column():
    # b's rows are stored out of order; by seed, a beats b by 0.1 in every seed. Paired by row
    # order (or compared sorted), a would lose in most seeds.
    a = table([0.5, 0.6, 0.7, 0.8, 0.9])
    b = table([0.8, 0.7, 0.4, 0.6, 0.5], seeds=[4, 3, 0, 2, 1])  # by seed: 0.4 0.5 0.6 0.7 0.8
    [o] = run(finding([check(op=">=", than="b.test.accuracy", by=0.099)]), per_seed={"a": a, "b": b})
    c = o.checks[0]
    assert c.b.values == (0.4, 0.5, 0.6, 0.7, 0.8)
    assert c.per_seed == (True,) * 5 and o.status == "holds"


def test_pairing_matters_a_seedwise_loss_is_not_hidden_by_the_means():
    a = table([0.9, 0.9, 0.9, 0.9, 0.5])
    b = table([0.8, 0.8, 0.8, 0.8, 0.95])  # means 0.82 vs 0.83: a < b on the mean, wins 4 seeds
    [o] = run(finding([check(op=">", than="b.test.accuracy")], min_seeds=4), per_seed={"a": a, "b": b})
    assert o.checks[0].k == 4 and not o.checks[0].mean_holds and o.status == "does not hold"


@pytest.mark.parametrize("spec, holds", [
    (dict(op=">=", value=0.9), True),
    (dict(op=">", value=0.9), False),
    (dict(op="<=", value=0.9), True),
    (dict(op=">=", than="b.test.accuracy", by=0.45), True),
    (dict(op=">=", than="b.test.accuracy", by=0.46), False),
    (dict(metric="b.test.accuracy", op="<", than="a.test.accuracy", by=0.4), True),
    (dict(metric="b.test.accuracy", op="<", than="a.test.accuracy", by=0.5), False),
    (dict(op="within", than="b.test.accuracy", by=0.5), True),
    (dict(op="within", than="b.test.accuracy", by=0.4), False),
])
def test_comparisons(spec, holds):
    per_seed = {"a": table([0.9] * N), "b": table([0.45] * N)}
    [o] = run(finding([check(**spec)]), per_seed=per_seed)
    assert o.checks[0].holds is holds and o.checks[0].k == (N if holds else 0)


def test_mean_and_sample_sd():
    [o] = run(finding([check(op=">=", value=0)]), per_seed={"a": table([0.1, 0.2, 0.3, 0.4, 0.5])})
    side = o.checks[0].a
    assert side.mean == pytest.approx(0.3) and side.sd == pytest.approx(0.158113883)  # ddof=1
    [o] = run(finding([check(op=">=", value=0)]), per_seed={"a": table([0.7])}, n_seeds=1)
    assert o.checks[0].a.sd == 0.0 and "0.700 ± 0.000 (1 seed)" in o.evidence[0]


def test_a_nan_seed_is_never_skipped():
    [o] = run(finding([check(metric="a.test.log_loss", op="<=", value=1)], min_seeds=4),
              per_seed={"a": table([0.9] * N, **{"test.log_loss": [0.1, 0.1, float("nan"), 0.1, 0.1]})})
    assert o.checks[0].k == 4 and not o.checks[0].mean_holds and o.status == "does not hold"


# ----------------------------------------------------------------------------------- confounds

def test_confounds_list_every_other_differing_knob_with_both_values():
    knobs = {"a": BASE_KNOBS,
             "b": {**BASE_KNOBS, "activation": "sigmoid", "learning_rate": 0.001, "validation_split": 0.3},
             "c": {**BASE_KNOBS, "activation": "sigmoid"}}
    per_seed = {e: table([0.9] * N) for e in "abc"}
    [confounded, clean] = run(
        finding([check(op="within", than="b.test.accuracy", by=0.1)], id="x", varies="activation"),
        finding([check(op="within", than="c.test.accuracy", by=0.1),
                 check(metric="c.test.accuracy", op="within", than="a.test.accuracy", by=0.1)],
                id="y", varies="activation"),
        per_seed=per_seed, knobs=knobs)
    [pair] = confounded.confounds
    assert (pair.a, pair.b, pair.varied) == ("a", "b", ("relu", "sigmoid"))
    assert pair.differences == (("learning_rate", 0.01, 0.001), ("validation_split", 0.2, 0.3))
    assert "also differs in learning_rate 0.01 vs 0.001, validation_split 0.2 vs 0.3" in pair.text()
    assert confounded.confounded and confounded.status == "holds"
    assert "confounded: also differs in" not in confounded.verdict()  # names the pair first
    assert "but confounded: a vs b (activation relu vs sigmoid): also differs in learning_rate" in confounded.verdict()
    assert len(clean.pairs) == 1 and not clean.confounded and clean.verdict() == "✅ holds"


def test_findings_without_varies_get_no_confound_analysis():
    knobs = {"a": BASE_KNOBS, "b": {**BASE_KNOBS, "depth": 2, "epochs": 10}}
    [o] = run(finding([check(op="within", than="b.test.accuracy", by=0.1)]),
              per_seed={"a": table([0.9] * N), "b": table([0.9] * N)}, knobs=knobs)
    assert o.pairs == () and not o.confounded


def test_confounded_controls_finding_fails_validate_but_notebook_finding_does_not():
    knobs = {"a": BASE_KNOBS, "b": {**BASE_KNOBS, "depth": 2, "learning_rate": 0.1}}
    per_seed = {"a": table([0.9] * N), "b": table([0.8] * N)}
    checks = [check(op=">", than="b.test.accuracy", by=0.05)]
    outcomes = run(finding(checks, id="nb", source="notebook", varies="depth"),
                   finding(checks, id="ctl", source="controls", varies="depth"),
                   finding([check(op=">", value=0.95)], id="nb_fails", source="notebook"),
                   per_seed=per_seed, knobs=knobs)
    assert [o.status for o in outcomes] == ["holds", "holds", "does not hold"]
    assert all(o.confounded for o in outcomes[:2])
    lines = failures(outcomes)
    assert len(lines) == 2
    assert lines[0].startswith("finding ctl (controls) is confounded")
    assert "learning_rate 0.01 vs 0.1" in lines[0]
    assert lines[1].startswith("finding nb_fails (notebook) does not hold")
    assert not any("finding nb " in line for line in lines)
    assert outcomes[0].short_verdict() == "⚠️ holds as measured, but confounded"


# ---------------------------------------------------------------------------- failed-to-learn

def test_failed_to_learn_seeds_are_named_and_still_counted():
    per_seed = {"a": table([0.9] * N),
                "b": table([0.33, 0.2, 0.33, 0.3, 0.33], learned=[True, False, True, 0, 1])}
    [o] = run(finding([check(op=">=", than="b.test.accuracy", by=0.5)]), per_seed=per_seed)
    c = o.checks[0]
    assert c.n == 5 and c.b.failed_seeds == (1, 3)
    assert c.failed_to_learn() == ["b: seeds 1, 3 failed to learn"]
    assert "  ⚠ b: seeds 1, 3 failed to learn" in o.evidence
    assert "b: seeds 1, 3 failed to learn" in to_markdown([o])


def test_a_table_without_learned_is_refused():
    frame = table([0.9] * N).drop(columns="learned")
    with pytest.raises(ParamsError, match="no `learned` column"):
        run(finding([check(op=">=", value=0)]), per_seed={"a": frame})


def test_a_table_with_other_seeds_than_params_is_refused():
    with pytest.raises(ParamsError, match=r"seeds \[0, 1, 2\], expected 0 to 4"):
        run(finding([check(op=">=", value=0)]), per_seed={"a": table([0.9] * 3)})


# ------------------------------------------------------------------------------ bad input: one line

@pytest.mark.parametrize("bad, expected", [
    (finding([check(op=">", value=0)], varies="lr"),
     "finding f: varies: 'lr' is not a knob; use one of: " + ", ".join(KNOBS)),
    (finding([check(op=">", value=0)], min_seeds=6),
     "finding f: min_seeds: 6 is more than the 5 seeds (params `seeds`); use 1 to 5, "
     "or leave it out for all seeds"),
    (finding([check(op=">", value=0)], source="notebook", overturned_by=["nope"]),
     "finding f: overturned_by: 'nope' is not a finding; defined findings: f"),
    (finding([check(metric="zzz.test.accuracy", op=">", value=0)]),
     "finding f: checks[0].metric: 'zzz.test.accuracy' names no experiment 'zzz'; "
     "defined experiments: a, b"),
    (finding([check(op=">", than="zzz.test.accuracy")]),
     "finding f: checks[0].than: 'zzz.test.accuracy' names no experiment 'zzz'; "
     "defined experiments: a, b"),
    (finding([check(op=">", value=0)], overturned_by=["f"]),
     "finding f: overturned_by: only a `source: notebook` finding can be overturned"),
    ({k: v for k, v in finding([check(op=">", value=0)]).items() if k != "source"},
     "finding f: source: missing key; use one of: notebook, controls, literature"),
    (finding([check(op=">", value=0)], source="paper"),
     "finding f: source: 'paper' is not allowed; use one of: notebook, controls, literature"),
    (finding([check(op=">", value=0)], source="literature"),
     "finding f: citation: missing; a `source: literature` finding names the publication it "
     'reproduces, e.g. citation: "Hein, Andriushchenko & Bitterwolf, CVPR 2019, arXiv 1812.05720"'),
    (finding([check(op=">", value=0)], source="literature", citation="  "),
     "finding f: citation: is empty; give the publication"),
    (finding([check(op=">", value=0)], citation=1812.05720),
     "finding f: citation: Input should be a valid string"),
    (finding([check(op=">", value=0)], expect="fails"),
     "finding f: expect: 'fails' is not allowed; use one of: holds, does not hold"),
    (finding([check(op=">", value=0)], min_seeds=0),
     "finding f: min_seeds: Input should be greater than or equal to 1"),
    (finding([check(op="~", value=0)]), "finding f: checks[0].op: '~' is not allowed; use one of"),
    (finding([check(op=">")]), "finding f: checks[0]: give exactly one of `value`"),
    (finding([check(op="within", value=1)]), "finding f: checks[0]: `op: within` compares two metrics"),
    (finding([check(op=">", than="b.test.accuracy", by=-1)]), "finding f: checks[0].by:"),
    (finding([check(op=">", value=0)], vary="depth"), "finding f: vary: unknown key"),
])
def test_each_bad_input_gives_one_clear_line(bad, expected):
    [line] = errors({"findings": [bad]})
    assert line.startswith(f"{FINDINGS_FILE}: {expected}")


def test_every_problem_is_reported_at_once_before_any_work():
    raw = {"findings": [
        finding([check(op=">", value=0)], id="nb", source="notebook", varies="size",
                min_seeds=9, overturned_by=["nb", "gone"]),
        finding([check(metric="x.test.accuracy", op=">", value=0)], id="ctl"),
    ]}
    lines = errors(raw)
    assert len(lines) == 5
    assert [line.split(": ")[2].split(":")[0] for line in lines] == [
        "varies", "min_seeds", "overturned_by", "overturned_by", "checks[0].metric"]
    assert "'nb' is a notebook finding; only `source: controls` findings can overturn one" in lines[2]


def test_duplicate_ids_are_refused():
    f = finding([check(op=">", value=0)])
    [line] = errors({"findings": [f, f]})
    assert "finding f: id: 'f' is used by more than one finding" in line


def test_unknown_metric_column_names_finding_metric_and_available_columns():
    per_seed = {"a": table([0.9] * N, **{"val.accuracy": [0.9] * N})}
    with pytest.raises(ParamsError) as exc:
        run(finding([check(metric="a.test.precision", op=">", value=0)], id="prec"), per_seed=per_seed)
    [line] = str(exc.value).splitlines()
    assert line == (f"{FINDINGS_FILE}: finding prec: a.test.precision: no such metric "
                    "'test.precision' for a; available: test.accuracy, val.accuracy")


def test_missing_experiment_is_not_measured_and_fails_validate():
    [o] = run(finding([check(op=">", than="b.test.accuracy")]), per_seed={"a": table([0.9] * N)})
    assert o.status == "not measured" and o.checks == ()
    assert o.evidence == ["not measured: no per-seed results for b"]
    assert failures([o]) == ["finding f (controls): not measured: no per-seed results for b"]


def test_load_findings_reads_yaml_and_reports_bad_yaml(tmp_path):
    path = tmp_path / "findings.yaml"
    path.write_text(yaml.safe_dump({"findings": [finding([check(op=">", value=0)], min_seeds=3)]}))
    loaded = load_findings(path, {"a"}, 3)
    assert loaded.n_seeds == 3 and loaded.findings[0].min_seeds == 3
    path.write_text("findings: [\n")
    with pytest.raises(ParamsError, match=r"findings.yaml: not valid YAML at line \d+"):
        load_findings(path, {"a"}, 3)
    with pytest.raises(ParamsError, match="file not found"):
        load_findings(tmp_path / "nope.yaml", {"a"}, 3)


# ------------------------------------------------------------------- literature and `expect`

CITATION = "Hein, Andriushchenko & Bitterwolf, CVPR 2019, arXiv 1812.05720"


def test_literature_needs_a_citation_and_any_finding_may_have_one():
    raw = {"findings": [finding([check(op=">", value=0)], id="lit", source="literature", citation=CITATION),
                        finding([check(op=">", value=0)], id="ctl", citation="Hanin & Rolnick 2019")]}
    lit, ctl = parse_findings(raw, ("a",), N).findings
    assert (lit.source, lit.citation, lit.expect) == ("literature", CITATION, "holds")
    assert (ctl.source, ctl.citation) == ("controls", "Hanin & Rolnick 2019")


@pytest.mark.parametrize("expect, accuracy, fails", [
    ("holds", 0.9, None),
    ("holds", 0.5, "finding f (literature) does not hold: a claim"),
    ("does not hold", 0.5, None),
    ("does not hold", 0.9, "finding f (literature) holds, but findings.yaml records it as not "
                           "reproducing here (expect: does not hold): a claim"),
])
def test_validate_fails_when_the_measured_status_differs_from_expect(expect, accuracy, fails):
    [o] = run(finding([check(op=">=", value=0.8)], source="literature", citation=CITATION, expect=expect),
              per_seed={"a": table([accuracy] * N)})
    lines = failures([o])
    assert o.as_recorded is (fails is None)
    if fails is None:
        assert lines == []
    else:
        [line] = lines
        assert line.startswith(fails)
        assert f"a.test.accuracy: {accuracy:.3f} ± 0.000 (5 seeds) ≥ 0.8" in line  # its numbers


def test_verdicts_say_whether_a_claim_reproduces_as_recorded():
    per_seed = {"a": table([0.5] * N), "b": table([0.9] * N)}
    knobs = {"a": BASE_KNOBS, "b": {**BASE_KNOBS, "depth": 2, "learning_rate": 0.1}}
    recorded, back, confounded = run(
        finding([check(op=">=", value=0.8)], id="r", expect="does not hold"),
        finding([check(metric="b.test.accuracy", op=">=", value=0.8)], id="back", expect="does not hold"),
        finding([check(op=">", than="b.test.accuracy")], id="c", source="notebook", varies="depth",
                expect="does not hold"),
        per_seed=per_seed, knobs=knobs)
    assert recorded.short_verdict() == recorded.verdict() == "➖ does not reproduce here (as recorded)"
    assert back.short_verdict() == "❌ holds, but findings.yaml records it as not reproducing here"
    assert confounded.short_verdict() == "➖ does not reproduce here (as recorded) (and confounded)"
    assert confounded.verdict().startswith("➖ does not reproduce here (as recorded) (and confounded: a vs b")
    # a notebook claim recorded as not reproducing, confounded: as the notebook ran it, it passes
    assert [line.split(" ", 2)[1] for line in failures([recorded, back, confounded])] == ["back"]


def test_a_literature_finding_is_checked_for_confounds_like_controls_only_with_varies():
    knobs = {"a": BASE_KNOBS, "b": {**BASE_KNOBS, "depth": 2, "learning_rate": 0.1}}
    per_seed = {"a": table([0.9] * N), "b": table([0.8] * N)}
    checks = [check(op=">", than="b.test.accuracy", by=0.05)]
    with_varies, without = run(
        finding(checks, id="v", source="literature", citation=CITATION, varies="depth"),
        finding(checks, id="w", source="literature", citation=CITATION),
        per_seed=per_seed, knobs=knobs)
    assert with_varies.confounded and not without.confounded and without.pairs == ()
    [line] = failures([with_varies, without])
    assert line.startswith("finding v (literature) is confounded: a literature finding with "
                           "`varies` must differ only in depth")
    assert "learning_rate 0.01 vs 0.1" in line


@pytest.mark.parametrize("citation, markdown", [
    (CITATION, f"[{CITATION}](https://arxiv.org/abs/1812.05720)"),
    ("Smith 2020, arXiv:2001.00001v2", "[Smith 2020, arXiv:2001.00001v2](https://arxiv.org/abs/2001.00001)"),
    ("Hanin & Rolnick, ICML 2019, doi 10.5555/3327144.3327299.",
     "[Hanin & Rolnick, ICML 2019, doi 10.5555/3327144.3327299.](https://doi.org/10.5555/3327144.3327299)"),
    ("see https://playground.tensorflow.org", "[see https://playground.tensorflow.org]"
                                              "(https://playground.tensorflow.org)"),
    ("A | B, a book, 1999", "A \\| B, a book, 1999"),
    (None, "–"),
])
def test_citations_are_linked_to_their_arxiv_id_doi_or_url(citation, markdown):
    assert cited(citation) == markdown


def test_markdown_shows_a_literature_finding_its_citation_and_a_claim_that_does_not_reproduce():
    outcomes = run(
        finding([check(op=">=", value=0.8)], id="far_away", source="literature", citation=CITATION,
                expect="does not hold"),
        finding([check(op=">=", value=0.1)], id="mine"),
        per_seed={"a": table([0.5] * N)})
    md = to_markdown(outcomes)
    assert md.splitlines()[0] == "| finding | source | varies | verdict | citation |"
    assert (f"| [far_away](#far_away) | literature | – | ➖ does not reproduce here (as recorded) | "
            f"[{CITATION}](https://arxiv.org/abs/1812.05720) |") in md
    assert "| [mine](#mine) | controls | – | ✅ holds | – |" in md
    assert "**Claim** (literature): a claim" in md
    assert f"**Citation:** [{CITATION}](https://arxiv.org/abs/1812.05720)" in md
    assert "- ✗ a.test.accuracy: 0.500 ± 0.000 (5 seeds) ≥ 0.8 — holds in 0/5 seeds" in md
    assert "**Verdict:** ➖ does not reproduce here (as recorded)" in md
    assert md.count("**Citation:**") == 1 and failures(outcomes) == []


# ----------------------------------------------------------------------------------------- report

def test_markdown_shows_claim_source_mean_sd_k_of_n_verdict_and_controls():
    knobs = {"a": BASE_KNOBS, "b": {**BASE_KNOBS, "activation": "sigmoid", "learning_rate": 0.001},
             "c": {**BASE_KNOBS, "learning_rate": 0.001}}
    per_seed = {"a": table([0.90, 0.92, 0.94, 0.96, 0.98]), "b": table([0.5] * N),
                "c": table([0.91, 0.5, 0.93, 0.95, 0.97], learned=[1, 0, 1, 1, 1])}
    outcomes = run(
        finding([check(op=">", than="b.test.accuracy", by=0.1)], id="relu_wins", source="notebook",
                varies="activation", overturned_by=["lr_explains_it"]),
        finding([check(op="within", than="c.test.accuracy", by=0.1)], id="lr_explains_it",
                source="controls", varies="learning_rate", min_seeds=4),
        per_seed=per_seed, knobs=knobs)
    md = to_markdown(outcomes)
    assert "| [relu_wins](#relu_wins) | notebook | activation | ⚠️ holds as measured, but confounded |" in md
    assert "**Claim** (notebook): a claim" in md and "**Claim** (controls): a claim" in md
    assert ("a.test.accuracy: 0.940 ± 0.032 (5 seeds) vs b.test.accuracy: 0.500 ± 0.000 (5 seeds), "
            "needs first > second + 0.1 — holds in 5/5 seeds") in md
    assert "holds in 4/5 seeds (needs 4)" in md
    assert "c: seed 1 failed to learn" in md
    assert ("**Verdict:** ⚠️ holds as measured, but confounded: a vs b (activation relu vs sigmoid): "
            "also differs in learning_rate 0.01 vs 0.001") in md
    assert "**Controls:** see lr_explains_it (✅ holds)" in md
    assert failures(outcomes) == []


def test_outcomes_are_frozen():
    [o] = run(finding([check(op=">", value=0)]), per_seed={"a": table([0.9] * N)})
    assert isinstance(o, Outcome) and isinstance(o.checks[0], CheckOutcome)
    with pytest.raises(AttributeError):
        o.status = "holds"
    assert Check(metric="a.test.accuracy", op=">", value=0).experiments() == {"a"}


# ------------------------------------------------------------------------------- shipped findings

def test_shipped_findings_load_against_params():
    """The real findings.yaml names real experiments and valid keys, and evaluates on fake tables."""
    params = load_params()
    raw = yaml.safe_load(FINDINGS_FILE.read_text())
    if any(isinstance(f, dict) and "source" in f for f in raw.get("findings", [])):
        findings = load_findings_for(params)
    else:  # not yet migrated to the per-seed format: check its names with `source: notebook`
        raw["findings"] = [{"source": "notebook", **f} for f in raw["findings"]]
        findings = parse_findings(raw, params.experiments, params.seeds)
    columns = {"test.accuracy", "val.accuracy", "train.accuracy", "test.log_loss", "val.log_loss",
               "train.log_loss", "sharpness.mean_max_probability", "sharpness.mean_entropy"}
    columns |= {c.split(".", 1)[1] for f in findings.findings for ch in f.checks
                for c in (ch.metric, ch.than) if c}
    fake = {key: pd.DataFrame({"seed": range(params.seeds), "learned": True,
                               **{c: [0.5] * params.seeds for c in columns}})
            for key in params.specs()}  # experiments and sweep points
    outcomes = evaluate(findings, fake, knobs_of(params))
    assert {o.status for o in outcomes} <= {"holds", "does not hold"}
    assert to_markdown(outcomes).count("\n## ") == len(findings.findings)


# ------------------------------------------------------------------------------- sweep points

POINT = "hard[depth=1,l2=0.001]"  # a sweep point's key (config.point_key): its name may hold dots


def test_a_finding_can_compare_sweep_points_whose_names_hold_dots():
    per_seed = {POINT: table([0.99] * N), "hard[depth=2,l2=0.001]": table([0.90] * N)}
    [o] = run(finding([check(f"{POINT}.test.accuracy", op=">", than="hard[depth=2,l2=0.001].test.accuracy", by=0.05)],
                      varies="depth"),
              per_seed=per_seed, experiments=tuple(per_seed))
    assert o.status == "holds"
    assert o.finding.experiments() == set(per_seed)


def test_an_unknown_sweep_point_is_one_line_naming_the_defined_ones():
    [line] = errors({"findings": [finding([check(f"{POINT}.test.accuracy", op=">=", value=0.5)])]})
    assert f"checks[0].metric: '{POINT}.test.accuracy' names no experiment '{POINT}'" in line


def test_params_name_every_sweep_point_for_findings(params_dict):
    from intuition.config import parse_params

    params_dict["sweeps"] = {"s": {"base": "spiral_hard_relu_2x100", "axes": {"l2": [0, 0.001]}}}
    params = parse_params(params_dict)
    assert {"s[l2=0]", "s[l2=0.001]"} <= set(params.specs()) and set(params.experiments) <= set(params.specs())
    assert knobs_of(params)["s[l2=0.001]"]["l2"] == 0.001
