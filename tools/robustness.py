"""`make robustness`: every finding of findings.yaml over several base seeds, not one draw of them.

`python -m tools.robustness [--seeds 7 2026] [--keep]`, from the project root;
`python -m tools.robustness --from-record` runs nothing: it checks findings.yaml as it is now on the
draws robustness.json holds (and results/ as they are), in seconds: thresholds are set from the draws.

A finding is a claim about the architectures, not about one draw of `seeds` seeds: params.yaml
`seed` (the base seed) picks the data and every seed's initial weights and batch order, and a claim
that holds with base seed 42 may not with 7. So:
1. Before any work: params.yaml and findings.yaml are valid, the extra base seeds differ from the
   workspace's, and the workspace's results are current (`dvc status` of the evaluate stages and
   everything upstream says nothing); its results/ are the first draw, read as they are.
2. For each extra base seed, one at a time (`make run`'s runner already takes every core): a
   throw-away copy of the project (the files git tracks or would track, as they are in the working
   tree, uncommitted changes included; no data/, models/, results/, report/, dvc.lock or MLflow
   store), params.yaml `seed` set to it, then the whole pipeline there with `python -m tools.run`.
   The copy's runs go to its own mlflow.db: MLFLOW_* and DVC_* variables are not passed on, so the
   main checkout's store (or a team server) is never touched. The copy is deleted once its
   results/<experiment>/seeds.csv are read (`--keep` keeps it; a failed copy is always kept).
3. robustness.json is written at the project root (intuition.robustness.robustness_record): per extra
   base seed, the seeds.csv rows of every experiment a finding names (all its metric columns) and
   each experiment's fingerprint (its params, its dataset's, `seeds`, the base seed), and the date.
   No verdicts: the report stage checks the findings.yaml of its day on these numbers and on
   results/ (the workspace's own draw, never stored), so a threshold changed afterwards needs no new
   run; an experiment whose params changed since is shown as stale in that draw.
4. Every draw is checked with intuition.findings, the report's own code, and printed as a short
   table; exit 1 if a finding's status differs from its `expect` in any draw that is not stale, 2 on
   bad input or a stale workspace, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from intuition import files
from intuition.config import PARAMS_FILE, ParamsError, load_params
from intuition.findings import FINDINGS_FILE, Findings, knobs_of, load_findings_for
from intuition.robustness import (
    ROBUSTNESS_FILE, Draw, InDraw, InDraws, Setups, evaluate_draws, named_experiments, recorded_draws,
    robustness_record, stale_warning,
)

EXTRA_SEEDS = (7, 2026)
# Not copied: the pipeline's outputs (remade in the copy), dvc.lock (the copy runs cold) and MLflow.
NOT_COPIED = ("data/", "models/", "results/", "report/", "mlruns/", "mlartifacts/")
NOT_COPIED_FILES = ("dvc.lock", "mlflow.db", "mlflow.db.lock")
TAIL = 30  # lines of a failed copy's pipeline output shown
SEED_LINE = re.compile(r"^seed:[ \t]*[-+]?\d+", re.MULTILINE)


class Stop(Exception):
    """A user error (exit 2) or a failed draw (exit 1): what and where, in its last line."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def project_files(root: Path) -> list[str]:
    """What git tracks, and untracked files it does not ignore (a new module a changed file
    imports), as they are in the working tree; without the pipeline's outputs or MLflow's store."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    names = dict.fromkeys(name for name in out.split("\0") if name)
    return [name for name in names if not name.startswith(NOT_COPIED)
            and name not in NOT_COPIED_FILES and (root / name).is_file()]


def with_seed(params_text: str, base_seed: int) -> str:
    """params.yaml's text with its top-level `seed` set; the rest byte for byte, comments included."""
    text, count = SEED_LINE.subn(f"seed: {base_seed}", params_text)
    if count != 1 or yaml.safe_load(text).get("seed") != base_seed:
        raise Stop(f"error: {PARAMS_FILE}: no single top-level `seed: <number>` line to set to "
                   f"{base_seed}; write the base seed as `seed: 42`")
    return text


def make_copy(root: Path, base_seed: int) -> Path:
    """A copy of the project in a new temporary directory, in its own git repo (DVC needs one),
    with params.yaml `seed` set to `base_seed`."""
    copy = Path(tempfile.mkdtemp(prefix=f"robustness-seed{base_seed}-"))
    try:
        for name in project_files(root):
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, target)
        path = copy / PARAMS_FILE
        path.write_text(with_seed(path.read_text(), base_seed))
        for command in (["git", "init", "-q"], ["git", "add", "-A"],
                        ["git", "-c", "user.name=robustness", "-c", "user.email=robustness@localhost",
                         "commit", "-qm", f"robustness: base seed {base_seed}"]):
            subprocess.run(command, cwd=copy, check=True, capture_output=True)
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise
    return copy


def copy_env() -> dict[str, str]:
    """The environment of a copy's pipeline: without MLFLOW_* (its runs go to the copy's own
    mlflow.db, never the main store or a team server) and DVC_* (DVC_ROOT would send them back to
    the main checkout); this venv's dvc on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_pipeline(copy: Path, base_seed: int) -> None:
    """`python -m tools.run` in the copy, its output echoed with the base seed in front. Ctrl-C or
    SIGTERM stops it (tools.run stops its stages) and is raised again as KeyboardInterrupt."""
    proc = subprocess.Popen([sys.executable, "-m", "tools.run"], cwd=copy, env=copy_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL)
    try:
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            print(f"  [base seed {base_seed}] {line}", end="", flush=True)
        proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)  # its own session: only this one Ctrl-C reaches it
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    if proc.returncode != 0:
        raise Stop("\n".join([*tail, f"error: base seed {base_seed}: the pipeline failed (exit "
                              f"{proc.returncode}) in {copy} (kept; the stage logs are in "
                              f"{copy / '.dvc/tmp/run-logs'})"]), code=1)


def read_draw(root: Path, base_seed: int, experiments: list[str]) -> Draw:
    """The draw of `base_seed`: the per-seed rows of each of `experiments` (results/<experiment>/
    seeds.csv; a sweep point `<sweep>[<point>]`: its rows of results/sweeps/<sweep>/seeds.csv), under `root`."""
    plain = [key for key in experiments if "[" not in key]
    sweeps = sorted({key.partition("[")[0] for key in experiments if "[" in key})
    try:
        with contextlib.chdir(root):  # files' paths are relative to a project root
            tables = files.read_per_seed(plain, sweeps)
        return Draw(base_seed, {key: tables[key] for key in experiments})
    except FileNotFoundError as exc:
        raise Stop(f"error: {exc}") from None
    except KeyError as exc:
        raise Stop(f"error: {exc.args[0]}: no such sweep point in results/sweeps/ (run the pipeline)") from None


def workspace_is_current(root: Path) -> None:
    """The workspace's results/ are a draw only if they are what its pipeline makes now: `dvc status`
    of every evaluate stage and its upstream stages must say nothing. (A stale report stage does not
    matter: its outputs are not read, and writing robustness.json makes it stale.)"""
    targets = ["evaluate"] + (["sweep"] if load_params(root / PARAMS_FILE).sweeps else [])
    result = subprocess.run(["dvc", "status", "--json", "--with-deps", *targets], cwd=root,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise Stop(f"error: `dvc status` failed: {(result.stderr or result.stdout).strip()}")
    stale = list(json.loads(result.stdout or "{}"))
    if stale:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        raise Stop(f"error: the workspace pipeline is stale (dvc status: {shown} changed); run "
                   "`make run` first: its results/ are the first draw")


def status_cell(draw: InDraw) -> str:
    """A draw in the table: ✓/✗ and the fewest seeds any check held in, e.g. '✓ 5/5', '✗ 3/5'."""
    if draw.stale:
        return "stale"
    if draw.outcome.status == "not measured":
        return "– n/m"
    worst = min(draw.outcome.checks, key=lambda c: c.k)
    cell = f"{'✓' if draw.outcome.status == 'holds' else '✗'} {worst.k}/{worst.n}"
    return f"{cell} !" if draw.differs else cell


def table(findings: Findings, in_draws: InDraws) -> tuple[str, list[str]]:
    """The printed summary, and one line per finding whose status differs from its `expect`."""
    seeds = [d.base_seed for d in in_draws[findings.findings[0].id]]
    width = max(len(f.id) for f in findings.findings)
    lines = [f"{'finding':<{width}}  {'expect':<13}" + "".join(f"  {s:>8}" for s in seeds)]
    differs = []
    for f in findings.findings:
        row = in_draws[f.id]
        lines.append(f"{f.id:<{width}}  {f.expect:<13}" + "".join(f"  {status_cell(d):>8}" for d in row))
        if off := [str(d.base_seed) for d in row if d.differs]:
            word = "seed" if len(off) == 1 else "seeds"
            differs.append(f"{f.id} (expect: {f.expect}): differs with base {word} {', '.join(off)}")
    lines.append("✓/✗: holds or not; k/n: the fewest seeds any of its checks held in; "
                 "– n/m: not measured; stale: its experiments changed since the draw; "
                 "!: differs from its `expect`")
    return "\n".join(lines), differs


def check_draws(findings: Findings, draws: list[Draw], knobs) -> int:
    """Every finding checked in every draw with findings.yaml as it is now, printed as a table;
    1 if a status differs from its `expect` in a draw that is not stale."""
    in_draws = evaluate_draws(findings, draws, knobs)
    text, differs = table(findings, in_draws)
    print(f"\n{text}")
    for line in differs:
        print(f"  differs from findings.yaml: {line}")
    if warning := stale_warning(in_draws):
        print(warning)
    return 1 if differs else 0


def run_draw(root: Path, base_seed: int, experiments: list[str], keep: bool) -> Draw:
    """The whole pipeline in a throw-away copy with `base_seed`; the draw it makes."""
    started = time.monotonic()
    copy = make_copy(root, base_seed)
    print(f"base seed {base_seed}: the whole pipeline in {copy}", flush=True)
    try:
        run_pipeline(copy, base_seed)
        draw = read_draw(copy, base_seed, experiments)
    except KeyboardInterrupt:
        if not keep:
            shutil.rmtree(copy, ignore_errors=True)
        raise
    if not keep:
        shutil.rmtree(copy)
    print(f"base seed {base_seed}: done in {time.monotonic() - started:.0f} s"
          + (f" (kept: {copy})" if keep else ""), flush=True)
    return draw


def measure(root: Path, extra_seeds: list[int], keep: bool) -> int:
    params = load_params(root / PARAMS_FILE)
    findings = load_findings_for(params, root / FINDINGS_FILE)
    experiments = named_experiments(findings)
    if params.seed in extra_seeds:
        raise Stop(f"error: --seeds: {params.seed} is the workspace's own base seed (params.yaml "
                   "`seed`), already a draw; give other base seeds")
    if len(set(extra_seeds)) != len(extra_seeds):
        raise Stop(f"error: --seeds: {' '.join(map(str, extra_seeds))} names a base seed twice")
    for base_seed in extra_seeds:
        with_seed((root / PARAMS_FILE).read_text(), base_seed)
    workspace_is_current(root)
    live = read_draw(root, params.seed, experiments)
    print(f"base seed {params.seed} (the workspace): read from {files.RESULTS}/", flush=True)
    extra = [run_draw(root, base_seed, experiments, keep) for base_seed in extra_seeds]
    setups = Setups.of(params)
    record = robustness_record(findings, extra, setups, datetime.date.today().isoformat())
    files.write_json(root / ROBUSTNESS_FILE, record)
    print(f"\nwrote {ROBUSTNESS_FILE}: the per-seed metrics of {len(experiments)} experiments with base "
          f"seeds {', '.join(map(str, extra_seeds))}; `make run` checks findings.yaml on them in "
          "report/findings.md, `python -m tools.robustness --from-record` here")
    return check_draws(findings, [live, *recorded_draws(record, setups, params.seed)], knobs_of(params))


def from_record(root: Path) -> int:
    """--from-record: findings.yaml as it is now, checked on robustness.json's draws and on results/
    as they are; nothing runs."""
    params = load_params(root / PARAMS_FILE)
    findings = load_findings_for(params, root / FINDINGS_FILE)
    if not (root / ROBUSTNESS_FILE).exists():
        raise Stop(f"error: {ROBUSTNESS_FILE}: missing; `make robustness` writes it")
    record = files.read_json(root / ROBUSTNESS_FILE)
    recorded = recorded_draws(record, Setups.of(params), params.seed)
    live = read_draw(root, params.seed, named_experiments(findings))
    seeds = ", ".join(str(d.base_seed) for d in recorded)
    others = (f"the draws of {ROBUSTNESS_FILE} (written {record.get('written')}): {seeds}" if recorded
              else f"{ROBUSTNESS_FILE} holds no other draw yet (`make robustness`)")
    print(f"base seed {params.seed} (the workspace): read from {files.RESULTS}/ as they are; {others}",
          flush=True)
    return check_draws(findings, [live, *recorded], knobs_of(params))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.robustness", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="extra base seeds, each a whole pipeline in a copy "
                             f"(default: {' '.join(map(str, EXTRA_SEEDS))})")
    parser.add_argument("--keep", action="store_true", help="keep each copy (its path is printed)")
    parser.add_argument("--from-record", action="store_true",
                        help=f"run nothing: check findings.yaml as it is now on {ROBUSTNESS_FILE}'s "
                             "draws and results/, and print the table")
    args = parser.parse_args(argv)
    if args.from_record and (args.seeds is not None or args.keep):
        parser.error("--from-record runs nothing: it takes no --seeds or --keep")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.from_record:
            return from_record(Path("."))  # relative: errors name findings.yaml
        return measure(Path("."), args.seeds or list(EXTRA_SEEDS), args.keep)
    except ParamsError as exc:
        print("\n".join(f"error: {line}" for line in str(exc).splitlines()), file=sys.stderr)
        return 2
    except Stop as exc:
        print(exc, file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("\ninterrupted: robustness.json not written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
