"""`make bench`: this project's timings, measured side by side on this machine. Prints Markdown and
writes it to bench/latest.md. Run it alone: it measures wall time on a 2-core machine.

1. Seeds: `train@` of the largest model (a fresh process, imports included) with `seeds: 1` and
   with `seeds: 5`, best of two each: what training every seed in one graph costs.
2. The trainer vs Keras' `model.fit` (500 epochs, same data and initial weights, one seed), for
   the smallest and the largest model (`--fit-all`: every experiment).
3. The whole default pipeline (every experiment and sweep, 500 epochs, every seed) in two fresh
   copies: cold `python -m tools.run --process-per-stage` (a `dvc` process per stage) vs cold
   `make run` (persistent stage workers); then in the second copy a rerun after a sweep base's
   learning rate changed, one after another experiment's, and a no-op run; peak RSS. Where the
   cold run's time goes: each stage kind's time summed over both cores as the runner printed it,
   the training in it as the stages recorded it, and the cores' busy time; and what that leaves
   each unmet target (the work alone against the goal).
4. Where a stage's time goes, per stage kind: imports, work, and DVC's own overhead (the same
   stage under `dvc repro --single-item --force` minus run directly).
5. What seeing inside costs: the trainer with ~30 weight snapshots vs with none (5 seeds, in
   process, best of 3), and per experiment what each new view adds to `evaluate@` (looking inside
   every seed, neuron tiles, linear regions, the boundary's evolution: frames, GIF, filmstrip, and
   logging its frames to MLflow), on the second pipeline copy's 500-epoch models; GIF sizes.
6. `evaluate@`'s steps, timed in one process for every experiment on the same models: reading,
   computing (forward passes, metrics), building the figures, writing the files (the figures
   rendered to PNG, the GIF, the CSVs) and recording the MLflow runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import psutil  # noqa: E402
import pandas as pd  # noqa: E402
from sandbox import (commit, edit_params, keep_findings_about, make_project, run, set_param, stage_seconds,  # noqa: E402
                     stages_run)

from intuition.config import load_params  # noqa: E402

LARGEST = "spiral_hard_relu_4x100"
SMALLEST = "linear_perceptron"
CHANGED = "spiral_hard_relu_2x100"
SWEEP = "hard_spiral_depth_width_inputs"  # the default hard-spiral sweep (issue: sweeps ≤ 0.25× experiments)
COLD_GOAL, KNOB_GOAL = 180, 15  # seconds: issue 17's goals for a cold `make run` and a knob's rerun
# What each stage kind imports before it works (measured alone in a fresh process).
IMPORTS = {
    "generate": "import stages.generate, sklearn.model_selection",
    "train": "import stages.train, keras, tensorflow, intuition.training",
    "evaluate": "import stages.evaluate, mlflow.keras",
    "report": "import stages.report",
}
EXAMPLES = {"generate": "spiral_hard", "train": LARGEST, "evaluate": LARGEST, "report": None}


def timed(project: Path, *args: str) -> float:
    return timed_output(project, *args)[0]


def timed_output(project: Path, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    output = run(project, *args).stdout
    return time.perf_counter() - started, output


def seconds_by_stage(output: str) -> pd.Series:
    """Each stage `python -m tools.run` ran to success, and its seconds as the runner printed them."""
    return pd.Series(stage_seconds(output), dtype=float)


def by_kind(seconds: pd.Series) -> pd.DataFrame:
    """Stage seconds summed by kind (`train@a` and `train@b` are `train`): stages, seconds."""
    kinds = seconds.index.str.split("@").str[0]
    return seconds.groupby(kinds).agg(["count", "sum"]).rename(columns={"count": "stages", "sum": "seconds"})


def training_seconds(project: Path) -> pd.Series:
    """Each stage's training time as it recorded it: train@'s training.json, sweep@'s trained points'
    shares of their groups' time (summed: the groups' time on both cores)."""
    from intuition import files, sweeps

    params = load_params(project / "params.yaml")
    seconds = {f"train@{key}": json.loads((project / files.TrainOutputs(key).training).read_text())["seconds"]
               for key in params.experiments}
    for key in params.sweeps:
        trained = (project / files.SweepOutputs(key).trained).glob("*.npz")
        seconds[f"sweep@{key}"] = sum(sweeps.read_trained(path).seconds for path in trained)
    return pd.Series(seconds, dtype=float)


def busy_seconds() -> float:
    """CPU time of the whole machine so far, every core: running code (not idle, waiting on disk,
    or taken by the hypervisor: steal; Linux counts guest time inside user already)."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)


def seeds_cost(tmp: Path) -> dict:
    project = make_project(tmp / "seeds", epochs=500, experiments=[LARGEST], seeds=1)
    run(project, "dvc", "repro", "generate@spiral_hard")
    result = {}
    for seeds in (1, 5):
        set_param(project, "seeds", seeds)
        result[seeds] = min(timed(project, "python", "-m", "stages.train", LARGEST) for _ in range(2))
        print(f"train@{LARGEST} with {seeds} seed(s): {result[seeds]:.1f} s", flush=True)
    return result


def trainer_vs_fit(keys: list[str]) -> list[dict]:
    import keras
    import tensorflow as tf

    from intuition.datasets import make_dataset, split_test, split_validation
    from intuition.models import build_model, encode_targets, optimizer_for
    from intuition.training import FitData, train

    tf.config.experimental.enable_op_determinism()
    params = load_params(ROOT / "params.yaml")
    rows = []
    for key in keys:
        spec, dataset = params.experiments[key], params.datasets[params.experiments[key].dataset]
        cut = split_validation(split_test(make_dataset(dataset, params.seed), dataset.test_fraction, params.seed).train,
                               spec.validation_split)
        data = FitData(cut.fit.X, encode_targets(cut.fit.y, spec), cut.val.X, encode_targets(cut.val.y, spec))
        loss = keras.losses.BinaryCrossentropy() if spec.is_binary else keras.losses.CategoricalCrossentropy()

        fit_model = build_model(spec, params.seed, data.x)
        fit_model.compile(optimizer=optimizer_for(spec), loss=loss, metrics=["accuracy"])
        started = time.perf_counter()
        history = fit_model.fit(data.x, data.y, validation_data=(data.x_val, data.y_val), epochs=spec.epochs,
                                batch_size=spec.batch_size, shuffle=True, verbose=0)
        fit_seconds = time.perf_counter() - started

        model = build_model(spec, params.seed, data.x)
        started = time.perf_counter()
        result = train([model], optimizer_for(spec), data, epochs=spec.epochs, batch_size=spec.batch_size,
                       seeds=[params.seed], binary=spec.is_binary, epochs_per_call=max(1, spec.epochs // 10))
        ours_seconds = time.perf_counter() - started
        rows.append({"key": key, "fit_s": fit_seconds, "ours_s": ours_seconds,
                     "fit_val": history.history["val_accuracy"][-1],
                     "ours_val": float(result.history["val_accuracy"].iloc[-1])})
        print(f"{key}: fit {fit_seconds:.1f} s, ours {ours_seconds:.1f} s", flush=True)
        keras.backend.clear_session()
    return rows


class PeakMemory:
    """Samples the resident memory of every stage process under `parent`, by stage (a stage
    worker, which runs many stages, by its process)."""

    def __init__(self, parent: int):
        self.parent, self.peaks, self._stop = psutil.Process(parent), {}, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self):
        while not self._stop.is_set():
            try:
                children = self.parent.children(recursive=True)
            except psutil.Error:
                return
            for child in children:
                try:
                    cmd = child.cmdline()
                    if "--stage-worker" in cmd:  # tools.stage_worker: every stage of one core
                        stage = f"stage worker {child.pid}"
                        self.peaks[stage] = max(self.peaks.get(stage, 0), child.memory_info().rss)
                    elif "-m" in cmd and cmd[cmd.index("-m") + 1].startswith("stages."):
                        stage = " ".join(cmd[cmd.index("-m") + 1:]).removeprefix("stages.")
                        self.peaks[stage] = max(self.peaks.get(stage, 0), child.memory_info().rss)
                except (psutil.Error, IndexError):
                    pass
            time.sleep(0.2)  # at 0.05 s this sampler took ~23 % of a core from what it measured


@dataclass(frozen=True)
class Cold:
    """A cold run: its wall time, the cores it kept busy on average, its processes' peak RSS, output."""

    seconds: float
    busy_cores: float
    peaks: dict
    output: str


def cold(project: Path, *command: str) -> Cold:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    busy, started = busy_seconds(), time.perf_counter()
    process = subprocess.Popen(list(command), cwd=project, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    with PeakMemory(process.pid) as memory:
        output = process.communicate()[0]
    seconds, busy = time.perf_counter() - started, busy_seconds() - busy
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    print(f"cold {' '.join(command)}: {seconds:.1f} s", flush=True)
    return Cold(seconds, busy / seconds, memory.peaks, output)


def full_project(path: Path) -> Path:
    """A fresh copy of the whole default pipeline: every experiment and sweep, 500 epochs, every seed."""
    params = load_params(ROOT / "params.yaml")
    return make_project(path, epochs=500, seeds=params.seeds,
                        sweeps={key: sweep.model_dump(exclude_none=True) for key, sweep in params.sweeps.items()})


def pipeline_timings(tmp: Path) -> dict:
    """The whole default pipeline in two fresh copies: cold with a `dvc` process per stage (the
    runner before stage workers) vs cold with `make run`'s stage workers; then, in the second
    copy, one knob of a sweep's base, one knob of another experiment, and a no-op run."""
    before, after = full_project(tmp / "process-per-stage"), full_project(tmp / "stage-workers")
    slow = cold(before, "python", "-m", "tools.run", "--process-per-stage")
    fast = cold(after, "python", "-m", "tools.run")
    same = all((before / path).read_text() == (after / path).read_text()
               for path in ("report/leaderboard.md", "report/findings.md", "report/sweeps.md"))
    cold_training = training_seconds(after)

    set_param(after, f"experiments.{CHANGED}.learning_rate", 0.002)
    rerun, rerun_output = timed_output(after, "python", "-m", "tools.run")
    set_param(after, f"experiments.{LARGEST}.learning_rate", 0.002)
    knob, knob_output = timed_output(after, "python", "-m", "tools.run")
    noop = min(timed(after, "python", "-m", "tools.run") for _ in range(3))
    kinds = {}
    for kind, example in EXAMPLES.items():
        target = kind if example is None else f"{kind}@{example}"
        direct = ["python", "-m", f"stages.{kind}"] + ([example] if example else [])
        imports = min(timed(after, "python", "-c", IMPORTS[kind]) for _ in range(2))
        alone = timed(after, *direct)
        under_dvc = timed(after, "dvc", "repro", "--single-item", "--force", target)
        kinds[kind] = {"stage": target, "imports": imports, "work": alone - imports, "dvc": under_dvc - alone}
    return {"before": slow.seconds, "after": fast.seconds, "stages": len(seconds_by_stage(fast.output)),
            "same_report": same, "rerun": rerun, "knob": knob, "noop": noop,
            "before_peak": max(slow.peaks.values(), default=0), "after_peaks": fast.peaks,
            "kinds": kinds, "project": after, "busy_cores": fast.busy_cores,
            "cold_stages": seconds_by_stage(fast.output), "cold_training": cold_training,
            "rerun_stages": seconds_by_stage(rerun_output), "knob_stages": seconds_by_stage(knob_output),
            "knob_training": training_seconds(after)}


def snapshot_cost(key: str = LARGEST, rounds: int = 3) -> dict:
    """The trainer on `key`, every seed, with ~30 snapshots and with epoch 0's only, alternating."""
    import keras
    import tensorflow as tf

    from intuition.datasets import make_dataset, split_test, split_validation
    from intuition.models import build_model, encode_targets, optimizer_for
    from intuition.training import FitData, train

    tf.config.experimental.enable_op_determinism()
    params = load_params(ROOT / "params.yaml")
    spec, dataset = params.experiments[key], params.datasets[params.experiments[key].dataset]
    cut = split_validation(split_test(make_dataset(dataset, params.seed), dataset.test_fraction, params.seed).train,
                           spec.validation_split)
    data = FitData(cut.fit.X, encode_targets(cut.fit.y, spec), cut.val.X, encode_targets(cut.val.y, spec))
    seeds = [params.seed + i for i in range(params.seeds)]
    best = {1: float("inf"), 30: float("inf")}
    for _ in range(rounds):
        for count in best:
            models = [build_model(spec, seed, data.x) for seed in seeds]
            started = time.perf_counter()
            train(models, optimizer_for(spec), data, epochs=spec.epochs, batch_size=spec.batch_size, seeds=seeds,
                  binary=spec.is_binary, epochs_per_call=max(1, spec.epochs // 10), snapshot_count=count)
            best[count] = min(best[count], time.perf_counter() - started)
            keras.backend.clear_session()
    print(f"trainer {key}: no snapshots {best[1]:.2f} s, 30 snapshots {best[30]:.2f} s", flush=True)
    return {"key": key, "without": best[1], "with": best[30]}


def view_costs(project: Path, keys: list[str]) -> list[dict]:
    """Per experiment, the seconds each of issue 10's views adds to evaluate@ (compute, draw, save at
    the project's dpi), measured in process on the project's trained models, one BLAS thread as
    evaluate@ runs; and the GIF's size."""
    import gc
    import io

    import mlflow
    from threadpoolctl import threadpool_limits

    from intuition import evolution, figures, files, metrics
    from intuition.inside import look_inside
    from intuition.network import load_layers
    from stages.evaluate import boundary_evolution

    threadpool_limits(1, user_api="blas")
    with contextlib.chdir(project):  # files.* paths are relative to the project root
        scratch = Path(tempfile.mkdtemp(prefix="bench-views-"))  # a store of its own, not the project's
        mlflow.set_tracking_uri(f"sqlite:///{scratch / 'mlflow.db'}")
        experiment = mlflow.create_experiment("bench-views", artifact_location=(scratch / "mlruns").as_uri())
        client = mlflow.MlflowClient()
        # The runs exist before timing starts, as the parent run does when evaluate@ logs its frames
        # (a fluent start_run/end_run pair alone costs up to ~1 s here).
        run_ids = {key: client.create_run(experiment, run_name=f"bench {key}").info.run_id for key in keys}
        params = load_params(project / "params.yaml")
        rows = []
        for key in keys:
            # evaluate@ is one process per experiment: collect the previous experiments' figures
            # first, or a collection of their garbage lands in a timed step (measured: ~0.9 s).
            gc.collect()
            spec, trained = params.experiments[key], files.TrainOutputs(key)
            splits, history = files.read_splits(spec.dataset), files.read_csv(trained.history)
            grid = metrics.make_grid(splits.all.X, params.plots.grid_resolution, params.plots.margin)
            models = [load_layers(trained.model(i)) for i in range(params.seeds)]
            clock = time.perf_counter

            def drawn(fig) -> float:  # build (already done) + save, as evaluate@ saves it
                started = clock()
                fig.savefig(io.BytesIO(), format="png", dpi=params.plots.dpi)
                return clock() - started

            t0 = clock()
            insides = [look_inside(m, grid, splits.all.X) for m in models]
            t1 = clock()
            tiles = figures.neuron_tiles(insides[0].maps, key, "seed 0", no_regions=insides[0].no_regions)
            tiles_s = clock() - t1 + drawn(tiles)
            regions_s = None
            if insides[0].regions is not None:
                started = clock()
                fig = figures.linear_regions(insides[0].regions, grid, splits.all, key, subtitle="seed 0")
                regions_s = clock() - started + drawn(fig)
            t2 = clock()
            evolved = boundary_evolution(models[0], files.read_snapshots(trained.snapshots), 0, history, splits,
                                         params.plots.margin, key, spec.epochs, "seed 0")
            drawn(evolved.filmstrip)
            t3 = clock()
            gif = evolution.gif_bytes(evolved.gif_frames)
            t4 = clock()
            for frame, image in zip(evolved.frames, evolved.gif_frames):  # as tracking.record logs them
                client.log_image(run_ids[key], evolution.picture(image), key="evolution", step=frame.epoch)
            t5 = clock()
            rows.append({"key": key, "look_inside": t1 - t0, "tiles": tiles_s, "regions": regions_s,
                         "evolution": t3 - t2, "gif": t4 - t3, "mlflow_images": t5 - t4,
                         "total": (t1 - t0) + tiles_s + (regions_s or 0) + (t5 - t2),
                         "gif_kib": len(gif) / 1024, "frames": len(evolved.frames)})
            print(f"views {key}: {rows[-1]['total']:.2f} s, GIF {len(gif) / 1024:.0f} KiB", flush=True)
    return rows


EVALUATE_STEPS = ("read", "compute", "draw", "write", "record")  # stages/evaluate.py's main, in order


def evaluate_steps(project: Path, keys: list[str]) -> pd.DataFrame:
    """Per experiment, the seconds of each step of evaluate@ (EVALUATE_STEPS: reading what train@
    wrote; every seed's forward passes and metrics; building the figures; writing the files, the
    figures rendered to PNG included; recording the MLflow runs, into the project's own store as
    evaluate@ does), run in this process on the project's trained models, one BLAS thread."""
    import gc

    from threadpoolctl import threadpool_limits

    from intuition import tracking
    from stages import evaluate

    threadpool_limits(1, user_api="blas")
    params = load_params(project / "params.yaml")
    rows = []
    with contextlib.chdir(project):  # files.* paths and the MLflow store are relative to the project root
        experiment_id = tracking.exit_if_unavailable(params.mlflow.experiment_name)
        for key in keys:
            gc.collect()  # as in view_costs: not the previous experiment's garbage
            clock = [time.perf_counter()]
            inputs = evaluate.read(params, key)
            clock.append(time.perf_counter())
            scored = evaluate.compute(inputs)
            clock.append(time.perf_counter())
            drawings, evolved = evaluate.draw(inputs, scored)
            clock.append(time.perf_counter())
            evaluate.write(inputs, scored, drawings, evolved)
            clock.append(time.perf_counter())
            evaluate.record(experiment_id, inputs, scored, evolved)
            clock.append(time.perf_counter())
            rows.append({"key": key, **dict(zip(EVALUATE_STEPS, pd.Series(clock).diff().dropna()))})
            print(f"evaluate steps {key}: {clock[-1] - clock[0]:.2f} s", flush=True)
    return pd.DataFrame(rows).set_index("key")


def as_experiment_key(point: str) -> str:
    return "p_" + re.sub(r"[^a-z0-9]+", "_", point.lower()).strip("_")


def sweep_vs_experiments(tmp: Path, sweep: str = SWEEP) -> dict:
    """The default hard-spiral sweep, cold, in a fresh copy (`dvc repro sweep@…`, its dataset
    included) vs the same points as ordinary experiments in another fresh copy, cold, through
    `make run`'s runner (both cores); and how far each point's mean test accuracy is from its twin's."""
    params = load_params(ROOT / "params.yaml")
    points, base = params.sweep_points(sweep), params.sweeps[sweep].base
    twins = {as_experiment_key(p.name): p for p in points}
    swept = make_project(tmp / "sweep", epochs=500, experiments=[base], seeds=params.seeds,
                         sweeps={sweep: params.sweeps[sweep].model_dump(exclude_none=True)})
    apart = make_project(tmp / "experiments", epochs=500, experiments=[base], seeds=params.seeds)

    def only_the_points(raw):
        raw["experiments"] = {key: p.spec.model_dump() for key, p in twins.items()}
    edit_params(apart, only_the_points)
    keep_findings_about(apart, set())
    commit(apart, "the sweep's points as experiments")
    swept_run, apart_run = cold(swept, "dvc", "repro", f"sweep@{sweep}"), cold(apart, "python", "-m", "tools.run")
    table = pd.read_csv(swept / "results" / "sweeps" / sweep / "points.csv").set_index("point")
    gaps = []
    for key, point in twins.items():
        alone = json.loads((apart / "results" / key / "metrics.json").read_text())["test"]["accuracy"]
        gaps.append({"point": point.name, "sweep": table.loc[point.name, "test_accuracy"], "alone": alone["mean"],
                     "sd": alone["sd"]})
    return {"sweep": sweep, "points": len(points), "sweep_s": swept_run.seconds, "apart_s": apart_run.seconds,
            "stages": 2 * len(points) + 2,  # train@ and evaluate@ per point, generate@ and report (tools.run prints no names)
            "gaps": pd.DataFrame(gaps),
            "peak": max(swept_run.peaks.values(), default=0)}


def sweep_report(result: dict) -> list[str]:
    gaps = result["gaps"]
    delta = (gaps["sweep"] - gaps["alone"]).abs()
    worst = gaps.loc[delta.idxmax()]
    ratio = result["sweep_s"] / result["apart_s"]
    return [
        "",
        f"| `{result['sweep']}`: {result['points']} points × seeds, 500 epochs, cold, fresh copies | seconds | vs experiments |",
        "|---|---:|---:|",
        f"| the points as experiments, `python -m tools.run` ({result['stages']} stages, both cores) | "
        f"{result['apart_s']:.1f} | 1.00× |",
        f"| the sweep, `dvc repro sweep@{result['sweep']}` (one stage; groups on both cores) | {result['sweep_s']:.1f} | "
        f"**{ratio:.2f}×** (target ≤ 0.25×, moonshot 0.1×) |",
        "",
        f"Each point's mean test accuracy vs the same experiment alone: {int((delta < 1e-9).sum())} of {len(gaps)} "
        f"identical; largest difference {delta.max():.4f} ({worst['point']}: {worst['sweep']:.4f} vs "
        f"{worst['alone']:.4f}, sd over seeds {worst['sd']:.4f}). Peak RSS of the sweep stage "
        f"{result['peak'] / 2**20:.0f} MiB.",
    ]


def where_the_time_goes(pipeline: dict, steps: pd.DataFrame) -> list[str]:
    """The cold run's stage time by kind, the training in it, and evaluate@'s steps measured alone."""
    stages = pipeline["cold_stages"]
    kinds = by_kind(stages).join(by_kind(pipeline["cold_training"])["seconds"].rename("training"))
    lines = [
        "",
        f"Where the cold run's time goes (`make run` above: {pipeline['after']:.1f} s of wall time, "
        f"{pipeline['busy_cores']:.2f} of {os.cpu_count()} cores busy on average, so "
        f"{pipeline['busy_cores'] * pipeline['after']:.0f} s of CPU time):",
        "",
        "| stage kind | stages | their wall time summed, as the runner printed each (s) | training in them, as the stages recorded it (s) |",
        "|---|---:|---:|---:|",
    ]
    for kind, row in kinds.sort_values("seconds", ascending=False).iterrows():
        training = "–" if pd.isna(row.training) else f"{row.training:.1f}"
        lines.append(f"| {kind} | {row.stages:.0f} | {row.seconds:.1f} | {training} |")
    lines.append(f"| all | {len(stages)} | {stages.sum():.1f} | {kinds.training.sum():.1f} |")
    total = steps.sum()
    lines += [
        "",
        f"`evaluate@`'s steps (`stages/evaluate.py`), run for each of the {len(steps)} experiments in one process, "
        "one after another, on the models above (the other core idle), summed:",
        "",
        "| read | compute (forward passes, metrics) | draw (build the figures) | write (figures rendered to PNG, "
        "GIF, CSVs) | record (the MLflow runs) | all | `evaluate@` in the cold run |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        "| " + " | ".join(f"{total[step]:.1f}" for step in EVALUATE_STEPS)
        + f" | {total.sum():.1f} | {kinds.loc['evaluate', 'seconds']:.1f} |",
        "",
        "A sweep trains its groups in one process per core, so its training summed over them can exceed its "
        "wall time. In the cold run both cores are busy: a stage's time includes waiting for a core, its share of "
        "the imports (once per stage worker) and DVC's bookkeeping.",
    ]
    return lines + goals_left(pipeline, steps)


def goals_left(pipeline: dict, steps: pd.DataFrame) -> list[str]:
    """For each pipeline goal not met, what the measurements above leave of it."""
    lines, cores, total = [], os.cpu_count(), steps.sum()
    if pipeline["after"] > COLD_GOAL:
        cpu, training = pipeline["busy_cores"] * pipeline["after"], by_kind(pipeline["cold_training"])["seconds"]
        lines.append(
            f"- Cold ≤ {COLD_GOAL} s: the run's work took {cpu:.0f} s of CPU time, so on {cores} cores no order of "
            f"it ends before {cpu / cores:.0f} s; {COLD_GOAL} s needs at least {cpu - cores * COLD_GOAL:.0f} s of it "
            "gone. Its largest parts: training (" + ", ".join(f"`{kind}@` {seconds:.0f} s"
                                                          for kind, seconds in training.items())
            + f"), and measured alone `evaluate@`'s MLflow records {total['record']:.0f} s and its figures "
            f"{total['draw'] + total['write']:.0f} s (built and written).")
    knob, chain = pipeline["knob_stages"], [f"train@{LARGEST}", f"evaluate@{LARGEST}", "report"]
    if pipeline["knob"] > KNOB_GOAL:
        trained, evaluated = pipeline["knob_training"][f"train@{LARGEST}"], steps.loc[LARGEST].sum()
        lines.append(
            f"- The knob ≤ {KNOB_GOAL} s: " + ", then ".join(f"`{stage}` {knob.get(stage, float('nan')):.1f} s"
                                                         for stage in chain)
            + f", one after another, and the runner's own {pipeline['knob'] - knob.sum():.1f} s. Its training alone is "
            f"{trained:.1f} s and `evaluate@`'s steps measured alone {evaluated:.1f} s: {trained + evaluated:.1f} s "
            "of work before any start-up.")
    rerun = pipeline["rerun_stages"]
    swept = [stage for stage in rerun.index if stage.startswith("sweep@")]
    if pipeline["rerun"] > KNOB_GOAL and swept:
        lines.append(
            f"- The sweep base's knob ≤ {KNOB_GOAL} s: every point of " + ", ".join(f"`{stage}`" for stage in swept)
            + " inherits the base's knobs and retrains: " + ", ".join(
                f"{rerun[stage]:.1f} s, its training {pipeline['knob_training'].get(stage, float('nan')):.1f} s "
                "summed over its training processes (one per core)" for stage in swept) + ".")
    return ["", "What the measurements leave of each pipeline goal not met:", "", *lines] if lines else []


def report(seeds: dict, rows: list[dict], pipeline: dict, snapshots: dict, views: list[dict],
           steps: pd.DataFrame) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    n_seeds = load_params(ROOT / "params.yaml").seeds
    lines = [
        f"Machine: {os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d')}.",
        "",
        f"| `train@{LARGEST}` (fresh process, imports included, best of 2) | seconds | vs 1 seed |",
        "|---|---:|---:|",
        f"| 1 seed | {seeds[1]:.1f} | 1.00× |",
        f"| 5 seeds, one graph | {seeds[5]:.1f} | {seeds[5] / seeds[1]:.2f}× (target ≤ 2×) |",
        "",
        "| experiment (1 seed) | model.fit s | trainer s | speed-up | fit val acc | trainer val acc |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['key']} | {r['fit_s']:.1f} | {r['ours_s']:.1f} | {r['fit_s'] / r['ours_s']:.1f}× | "
                     f"{r['fit_val']:.3f} | {r['ours_val']:.3f} |")
    peaks = pipeline["after_peaks"]
    biggest = max(peaks, key=peaks.get) if peaks else "n/a"
    lines += [
        "",
        f"| the whole default pipeline (500 epochs, {n_seeds} seeds, fresh copies, `make run`'s runner) | measured | target |",
        "|---|---:|---:|",
        f"| cold, a `dvc` process per stage (`--process-per-stage`), {pipeline['stages']} stages | {pipeline['before']:.1f} s | |",
        f"| cold, stage workers (`make run`) | {pipeline['after']:.1f} s ({pipeline['after'] / pipeline['before']:.2f}×) | ≤ {COLD_GOAL} s |",
        f"| same leaderboard, findings and sweeps from both | {'yes' if pipeline['same_report'] else 'NO'} | yes |",
        f"| rerun after `experiments.{CHANGED}.learning_rate` changed (a sweep's base: its sweep reruns too) | {pipeline['rerun']:.1f} s | ≤ {KNOB_GOAL} s |",
        f"| rerun after `experiments.{LARGEST}.learning_rate` changed | {pipeline['knob']:.1f} s | ≤ {KNOB_GOAL} s |",
        f"| no-op `make run`, best of 3 | {pipeline['noop']:.1f} s | ≤ 2 s |",
        f"| peak RSS, a `dvc` process per stage (largest stage) | {pipeline['before_peak'] / 2**20:.0f} MiB | ≤ 1536 MiB |",
        f"| peak RSS, stage workers (one process per core: {biggest}) | {peaks.get(biggest, 0) / 2**20:.0f} MiB | ≤ 1536 MiB |",
        "",
        "Per stage kind, run alone in its own process (what `--process-per-stage` pays per stage; a stage "
        "worker pays the imports once per core):",
        "",
        "| stage kind (example) | imports s | work s | DVC overhead s |",
        "|---|---:|---:|---:|",
    ]
    for kind, k in pipeline["kinds"].items():
        lines.append(f"| {kind} (`{k['stage']}`) | {k['imports']:.1f} | {k['work']:.1f} | {k['dvc']:.1f} |")
    lines += where_the_time_goes(pipeline, steps)
    overhead = snapshots["with"] / snapshots["without"] - 1
    lines += [
        "",
        f"| trainer, `{snapshots['key']}`, {n_seeds} seeds, in process, best of 3 | seconds |",
        "|---|---:|",
        f"| epoch 0's weights only | {snapshots['without']:.2f} |",
        f"| ~30 log-spaced snapshots (what `train@` does) | {snapshots['with']:.2f} ({overhead:+.1%}; target ≤ +10 %) |",
        "",
        "What each view adds to `evaluate@` (seconds; one BLAS thread; budget: all together ≤ 2 s per "
        "experiment; GIF < 2 MB). *inside* = every seed's units and region counts; *evolution* = 30 "
        "snapshot forward passes, GIF frames and the filmstrip; *MLflow* = logging the frames as images.",
        "",
        "| experiment | inside | neuron tiles | linear regions | evolution | GIF | MLflow images | total | GIF KiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in views:
        regions = "–" if v["regions"] is None else f"{v['regions']:.2f}"
        lines.append(f"| {v['key']} | {v['look_inside']:.2f} | {v['tiles']:.2f} | {regions} | {v['evolution']:.2f} | "
                     f"{v['gif']:.2f} | {v['mlflow_images']:.2f} | **{v['total']:.2f}** | {v['gif_kib']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit-all", action="store_true", help="compare with model.fit for every experiment")
    parser.add_argument("--sweep-only", action="store_true", help="only the sweep vs its points as experiments")
    args = parser.parse_args()
    if args.sweep_only:
        with tempfile.TemporaryDirectory() as tmp:
            table = "\n".join(sweep_report(sweep_vs_experiments(Path(tmp)))) + "\n"
        print(table)
        (ROOT / "bench" / "sweep.md").write_text("# Benchmark (`make bench`, `--sweep-only`)\n" + table)
        return
    keys = list(load_params(ROOT / "params.yaml").experiments) if args.fit_all else [SMALLEST, LARGEST]
    with tempfile.TemporaryDirectory() as tmp:
        seeds = seeds_cost(Path(tmp))
        rows = trainer_vs_fit(keys)
        snapshots = snapshot_cost()
        pipeline = pipeline_timings(Path(tmp))
        experiments = list(load_params(ROOT / "params.yaml").experiments)
        steps = evaluate_steps(pipeline["project"], experiments)
        views = view_costs(pipeline["project"], experiments)
        swept = sweep_vs_experiments(Path(tmp))
    table = report(seeds, rows, pipeline, snapshots, views, steps) + "\n".join(sweep_report(swept)) + "\n"
    print(table)
    (ROOT / "bench" / "latest.md").write_text("# Benchmark (`make bench`)\n\n" + table)


if __name__ == "__main__":
    main()
