"""`make compare`: DVC's experiments side by side, one line per experiment and DVC run, in the
terminal's width.

`dvc exp show` prints one column per param and per metric of every experiment (hundreds), and its
`--only-changed` drops the test accuracy of an experiment whose knob changed but whose accuracy did
not. This prints, for every experiment whose knobs (its own, its dataset's, the seeds) or headline
numbers differ between the workspace, its baseline commit and the DVC experiments run from it
(`dvc exp run -S ...`): what changed, then headline.json's numbers, always, changed or not.

    python -m tools.compare [--all]     # --all: every experiment, changed or not
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
from tabulate import tabulate

PARAMS = "params.yaml:"  # DVC prefixes params with their file only when there are several param files
HEADLINE = "/headline.json:"
SHOWN = ["test_accuracy", "test_accuracy_sd", "sharpness", "agreement", "learned", "status"]


def run_label(row: dict) -> str:
    """A DVC run as `dvc exp show` names it: the experiment's name, else `workspace` or the commit."""
    return row.get("Experiment") or row["rev"]


def knobs_of(row: dict, key: str) -> dict[str, str]:
    """An experiment's params in one DVC run: its own knobs, its dataset's (`dataset.<knob>`) and
    the study's seeds, as text (lists such as `layers` compare as what they print)."""
    params = {column.removeprefix(PARAMS): str(value) for column, value in row.items()
              if ":" not in column.removeprefix(PARAMS)}  # metrics are `<file>:<key>`
    own, data = f"experiments.{key}.", f"datasets.{params.get(f'experiments.{key}.dataset')}."
    return ({name.removeprefix(own): value for name, value in params.items() if name.startswith(own)}
            | {"dataset." + name.removeprefix(data): value for name, value in params.items() if name.startswith(data)}
            | {name: params[name] for name in ("seed", "seeds") if name in params})


def table(rows: list[dict], everything: bool = False) -> pd.DataFrame:
    """One line per (experiment, DVC run) where that experiment differs between the runs."""
    keys = sorted({column.split(HEADLINE)[0].removeprefix("results/") for row in rows for column in row
                   if HEADLINE in column})
    lines = []
    for key in keys:
        knobs = [knobs_of(row, key) for row in rows]
        numbers = [{name: row.get(f"results/{key}{HEADLINE}{name}") for name in SHOWN} for row in rows]
        changed = sorted({k for ks in knobs for k in ks if len({str(other.get(k)) for other in knobs}) > 1})
        if not everything and not changed and all(n == numbers[0] for n in numbers):
            continue
        for row, knob, number in zip(rows, knobs, numbers):
            lines.append({"experiment": key, "DVC run": run_label(row),
                          "changed": ", ".join(f"{k}={knob.get(k, '-')}" for k in changed) or "-",
                          "test accuracy": accuracy_text(number), "sharpness": three_decimals(number["sharpness"]),
                          "agreement": three_decimals(number["agreement"]), "learned": number["learned"],
                          "status": number["status"]})
    return pd.DataFrame(lines, columns=["experiment", "DVC run", "changed", "test accuracy", "sharpness",
                                        "agreement", "learned", "status"])


def three_decimals(value) -> str | None:
    return None if value is None else f"{value:.3f}"


def accuracy_text(number: dict) -> str:
    mean, sd = number["test_accuracy"], number["test_accuracy_sd"]
    if mean is None:
        return "-"
    return f"{mean:.3f} ± {sd:.3f}" if sd is not None else f"{mean:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every experiment, changed or not")
    args = parser.parse_args(argv)
    import dvc.api  # after argparse: `--help` answers at once

    rows = dvc.api.exp_show()
    shown = table(rows, everything=args.all)
    if shown.empty:
        print(f"Nothing differs between {', '.join(run_label(r) for r in rows)}. Try a DVC experiment, e.g.\n"
              "  dvc exp run -S experiments.xor_relu_1x8.learning_rate=0.003\nthen `make compare` again.")
        return 0
    print(tabulate(shown.fillna("-"), headers="keys", tablefmt="plain", showindex=False, floatfmt=".3f",
                   disable_numparse=True))
    print("\ntest accuracy: mean ± sd over seeds; learned: seeds that learned; full numbers: results/<experiment>/"
          "metrics.json, seeds.csv (`dvc exp show --json` for every column).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
