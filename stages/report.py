"""report: a gallery of every experiment's decision regions, a leaderboard of their scores, and
whether each finding of findings.yaml holds."""

from intuition import figures, files
from intuition.config import load_or_exit, user_errors
from stages.evaluate import plot_grid
from intuition.findings import evaluate as check_findings
from intuition.findings import load_findings, to_markdown
from intuition.network import load_layers, predict_grid, predict_proba


def leaderboard(rows: list[dict], datasets: list[str]) -> str:
    header = ("| experiment | dataset | architecture | params | val acc | test acc | "
              "val loss | test loss | sharpness | status |\n|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    lines = [header]
    for r in sorted(rows, key=lambda r: (datasets.index(r["dataset"]), -r["test_accuracy"])):
        lines.append(
            f"| {r['key']} | {r['dataset']} | {r['architecture']} | {r['params']} | "
            f"{r['val_accuracy']:.3f} | {r['test_accuracy']:.3f} | {r['val_loss']:.3f} | "
            f"{r['test_loss']:.3f} | {r['sharpness']:.3f} | {r['status']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    params = load_or_exit()
    with user_errors():
        findings = load_findings()
    rows, panels, measured = [], {}, {}
    for key, spec in params.experiments.items():
        out = files.ExperimentFiles(key)
        metrics = measured[key] = files.read_json(out.metrics)
        layers = load_layers(out.model)
        X, y, X_test, y_test = data = files.read_splits(spec.dataset)
        grid = plot_grid(params, data)
        proba = predict_grid(layers, grid)
        diverged_at = metrics["training"]["diverged_at_epoch"]
        panels.setdefault(spec.dataset, []).append({
            "grid": grid, "proba": proba, "X_train": X, "y_train": y, "X_test": X_test,
            "y_test": y_test, "y_test_pred": predict_proba(layers, X_test).argmax(axis=1),
            "title": key, "test_accuracy": metrics["test"]["accuracy"], "diverged": diverged_at is not None,
        })
        rows.append({
            "key": key, "dataset": spec.dataset, "architecture": spec.architecture(),
            "params": sum(spec.parameter_counts()),
            "val_accuracy": metrics["val"]["accuracy"], "test_accuracy": metrics["test"]["accuracy"],
            "val_loss": metrics["val"]["log_loss"], "test_loss": metrics["test"]["log_loss"],
            "sharpness": metrics["sharpness"]["mean_max_probability"],
            "status": f"DIVERGED at epoch {diverged_at}" if diverged_at else "ok",
        })
    gallery = figures.gallery(list(panels.values()), "Classification Intuition, rows: datasets")
    with files.atomic_path(files.REPORT / "gallery.png") as tmp:
        gallery.savefig(tmp, dpi=params.plots.dpi, bbox_inches="tight")
    table = leaderboard(rows, list(params.datasets))
    files.write_text(files.REPORT / "leaderboard.md", "# Leaderboard\n\n" + table)
    outcomes = check_findings(findings, measured)
    files.write_text(files.REPORT / "findings.md", "# Findings\n\n" + to_markdown(outcomes))
    print(table)
    for outcome in outcomes:
        print(f"finding {outcome.finding.id}: {outcome.status}")


if __name__ == "__main__":
    main()
