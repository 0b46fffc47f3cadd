"""report: a gallery of every experiment's decision regions, a leaderboard of their scores over seeds,
each sweep's maps, and whether each finding of findings.yaml holds. Reads only what the evaluate and
sweep stages wrote (results/), and robustness.json (`make robustness`: the per-seed metrics of more
draws of base seeds, on which each finding is checked as on results/, to say in how many draws it
held)."""

import shutil

import numpy as np

from intuition import figures, files, site
from intuition.config import load_or_exit, user_errors
from intuition.findings import evaluate as check_findings
from intuition.findings import failures, knobs_of, load_findings_for, to_markdown
from intuition.robustness import (
    ROBUSTNESS_FILE, Draw, Setups, draw_failures, evaluate_draws, over_base_seeds, recorded_draws, stale_warning,
)
from intuition.types import Grid, Points


def status(headline: dict, summary: dict) -> str:
    """headline.json's grade (intuition.metrics.grade) in words, as the site says it; 'poor' explained."""
    if headline["status"] == "poor":
        return "poor (less than halfway from chance to perfect)"
    return site.status_words(headline, summary)


def agreement(summary: dict) -> str:
    """metrics.json's agreement, and how many seeds voted when some did not (as the figure says)."""
    agreed, seeds = summary["agreement"], summary["seeds"]
    share, voting = site.fmt(agreed["all_seeds_agree"]), agreed["voting_seeds"]
    return share if voting == seeds else f"{share} ({voting} of {seeds} seeds voted)"


def mean_sd(summary: dict, split: str, name: str) -> str:
    return site.mean_sd(summary.get(split, {}).get(name))


def leaderboard(summaries: dict[str, dict], headlines: dict[str, dict], params) -> str:
    lines = [f"Mean ± sd over {params.seeds} seeds; sharpness is the mean winning-class probability over "
             "the plotted region; agreement is the share of that region where every voting seed predicts the same "
             "class (a seed with NaN/inf outputs there has no vote). Status: FAILED when a seed failed to learn; "
             "poor when the mean test accuracy is less than halfway from chance (always answering the commonest "
             "class) to 1; ok otherwise.",
             "",
             "| experiment | dataset | architecture | inputs | params | val acc | test acc | sharpness | agreement | status |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---|"]
    datasets = list(params.datasets)
    order = sorted(summaries, key=lambda k: (datasets.index(params.experiments[k].dataset),
                                            -summaries[k].get("test", {}).get("accuracy", {}).get("mean", 0)))
    for key in order:
        spec, s = params.experiments[key], summaries[key]
        lines.append(
            f"| {key} | {spec.dataset} | {spec.architecture()}, {spec.optimizer} {spec.learning_rate} | {spec.inputs} | "
            f"{sum(spec.parameter_counts())} | {mean_sd(s, 'val', 'accuracy')} | {mean_sd(s, 'test', 'accuracy')} | "
            f"{mean_sd(s, 'sharpness', 'mean_max_probability')} | {agreement(s)} | {status(headlines[key], s)} |")
    return "\n".join(lines) + "\n"


def gallery_panel(key: str, summary: dict, headline: dict) -> figures.GalleryPanel:
    with np.load(files.EvaluateOutputs(key).regions) as r:
        view = figures.RegionsView(Grid(r["xx"], r["yy"]), r["proba"], Points(r["train_X"], r["train_y"]),
                                   Points(r["test_X"], r["test_y"]), r["test_pred"])
    accuracy = summary.get("test", {}).get("accuracy", {"mean": np.nan, "sd": np.nan})
    return figures.GalleryPanel(key, view, accuracy["mean"], accuracy["sd"],
                               "poor" if headline["status"] == "poor" else status(headline, summary))


def sweeps_markdown(params) -> str:
    """Each sweep: what it varies, its best point, how many points learned in every seed, and its
    phase diagrams (the images sweep@ drew, linked from report/)."""
    lines = ["# Sweeps", "", "Each sweep trains every combination of its axes' values on its base experiment "
             "(params.yaml `sweeps:`); mean test accuracy over seeds in each cell, points where a seed failed "
             "to learn marked. Every point's numbers: `results/sweeps/<sweep>/points.csv`.", ""]
    for key, sweep in params.sweeps.items():
        out = files.SweepOutputs(key)
        summary = files.read_json(out.metrics)
        axes = " × ".join(f"{knob} ({', '.join(map(str, values))})" for knob, values in sweep.axes.items())
        lines += [f"## {key}", "", f"Base `{sweep.base}`; axes {axes}: {summary['points']} points × "
                  f"{summary['seeds']} seeds. Best: `{summary['best_point']}` at {summary['test_accuracy']['best']:.3f}; "
                  f"worst point {summary['test_accuracy']['worst']:.3f}; {summary['learned_in_every_seed']} of "
                  f"{summary['points']} points learned in every seed.", ""]
        lines += [f"![{key}: mean test accuracy](sweeps/{key}.png)", "",
                  "More maps (after `make run`): " + ", ".join(
                      f"[{figure.stem}](../{figure.as_posix()})" for figure in sorted(out.figures.glob("*.png"))), ""]
    return "\n".join(lines)


def sweep_pictures(params) -> None:
    """report/sweeps/<sweep>.png: each sweep's accuracy map over its first two axes, kept in git
    (the sweep's own figures/ is DVC-cached), so the README and sweeps.md show it on a fresh clone."""
    with files.atomic_path(files.REPORT / "sweeps") as tmp:
        tmp.mkdir()
        for key, sweep in params.sweeps.items():
            axes = list(sweep.axes)
            name = f"phase_test_accuracy_{axes[0]}" + (f"_x_{axes[1]}" if len(axes) > 1 else "")
            shutil.copyfile(files.SweepOutputs(key).figures / f"{name}.png", tmp / f"{key}.png")


def experiment_view(key: str, params, summary: dict, headline: dict) -> site.ExperimentView:
    spec, out = params.experiments[key], files.EvaluateOutputs(key)
    return site.ExperimentView(
        key=key, dataset=spec.dataset, architecture=spec.architecture(), summary_text=spec.summary(),
        inputs=spec.inputs, optimizer=spec.optimizer, learning_rate=spec.learning_rate,
        parameters=sum(spec.parameter_counts()), headline=headline, metrics=summary,
        seeds=files.read_csv(out.seeds), curves=files.read_csv(out.curves), evolution=files.read_json(out.evolution),
        mlflow_run=files.read_json(out.mlflow_run) if out.mlflow_run.exists() else None,
        figures=tuple(sorted(p.stem for p in out.figures.glob("*.png"))))


def sweep_view(key: str, params) -> site.SweepView:
    out = files.SweepOutputs(key)
    return site.SweepView(key, params.sweeps[key].base, dict(params.sweeps[key].axes), files.read_json(out.metrics),
                          files.read_csv(out.points), tuple(sorted(p.stem for p in out.figures.glob("*.png"))))


def write_site(params, summaries: dict, headlines: dict, outcomes, held) -> None:
    """report/site/: the offline HTML report (intuition.site), replaced whole."""
    built = site.Site(
        title="Classification Intuition", seeds=params.seeds,
        experiments={key: experiment_view(key, params, summaries[key], headlines[key]) for key in params.experiments},
        datasets=list(params.datasets), outcomes=outcomes, draws=held,
        sweeps={key: sweep_view(key, params) for key in params.sweeps})
    with files.atomic_path(files.SITE) as tmp:
        for name, text in site.pages(built).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)


def main() -> None:
    params = load_or_exit()
    with user_errors():
        findings = load_findings_for(params)
    summaries = {key: files.read_json(files.EvaluateOutputs(key).metrics) for key in params.experiments}
    headlines = {key: files.read_json(files.EvaluateOutputs(key).headline) for key in params.experiments}
    per_seed = files.read_per_seed(params.experiments, params.sweeps)

    groups: dict[str, list] = {name: [] for name in params.datasets}  # the leaderboard's order
    for key, spec in params.experiments.items():
        groups[spec.dataset].append(gallery_panel(key, summaries[key], headlines[key]))
    gallery = figures.gallery(groups, f"Classification Intuition ({params.seeds} seeds each)")
    with files.atomic_path(files.REPORT / "gallery.png") as tmp:
        gallery.savefig(tmp, dpi=params.plots.dpi, bbox_inches="tight")

    table = leaderboard(summaries, headlines, params)
    files.write_text(files.REPORT / "leaderboard.md", "# Leaderboard\n\n" + table)
    with user_errors():
        knobs = knobs_of(params)
        outcomes = check_findings(findings, per_seed, knobs)
        record = files.read_json(ROBUSTNESS_FILE) if ROBUSTNESS_FILE.exists() else None
        draws = [Draw(params.seed, per_seed), *recorded_draws(record, Setups.of(params), params.seed)]
        in_draws = evaluate_draws(findings, draws, knobs)
    held = over_base_seeds(findings, in_draws)
    files.write_text(files.REPORT / "findings.md", "# Findings\n\n" + to_markdown(outcomes, held))
    sweep_pictures(params)
    write_site(params, summaries, headlines, outcomes, held)
    files.write_text(files.REPORT / "sweeps.md", sweeps_markdown(params))
    print(table)
    for outcome in outcomes:
        print(f"finding {outcome.finding.id}: {outcome.short_verdict()}")
    for line in failures(outcomes) + draw_failures(in_draws):
        print(f"  check: {line}")
    if warning := stale_warning(in_draws):
        print(warning)


if __name__ == "__main__":
    main()
