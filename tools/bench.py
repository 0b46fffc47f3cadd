"""`make bench`: the project's trainer vs Keras' `model.fit`, and the pipeline's timings, side by
side on this machine. Prints a Markdown table and writes it to bench/latest.md.

1. Per experiment (500 epochs, its batch size, the same data, the same initial weights): seconds of
   `model.fit(..., shuffle=True, validation_data=...)` vs `stages.training.train`, their ratio, and
   both final validation accuracies.
2. In a temporary copy of the project: cold `dvc repro` wall time, peak RSS of every stage (psutil
   samples the stage processes), a rerun after one learning-rate change, and a no-op rerun.
Run it alone: it measures wall time on a 2-core machine.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import psutil  # noqa: E402
from sandbox import make_project, repro, set_param, stages_run  # noqa: E402

from intuition.config import load_params  # noqa: E402
from intuition.datasets import make_dataset, split_test, split_validation  # noqa: E402

CHANGED = "spiral_hard_relu_2x100"


def trainer_vs_fit() -> list[dict]:
    import keras
    import tensorflow as tf

    from intuition.models import build_model, encode_targets, loss_for, optimizer_for
    from intuition.training import train

    tf.config.experimental.enable_op_determinism()
    params = load_params(ROOT / "params.yaml")
    rows = []
    for key, spec in params.experiments.items():
        dataset = params.datasets[spec.dataset]
        X, y = make_dataset(dataset, params.seed)
        X, _, y, _ = split_test(X, y, dataset.test_fraction, params.seed)
        x_fit, y_fit, x_val, y_val = split_validation(X, y, spec.validation_split)
        y_fit, y_val = encode_targets(y_fit, spec), encode_targets(y_val, spec)

        fit_model = build_model(spec, params.seed)
        fit_model.compile(optimizer=optimizer_for(spec), loss=loss_for(spec), metrics=["accuracy"])
        started = time.perf_counter()
        history = fit_model.fit(x_fit, y_fit, validation_data=(x_val, y_val), epochs=spec.epochs,
                                batch_size=spec.batch_size, shuffle=True, verbose=0)
        fit_seconds = time.perf_counter() - started

        model = build_model(spec, params.seed)
        started = time.perf_counter()
        result = train(model, loss_for(spec), optimizer_for(spec), (x_fit, y_fit, x_val, y_val),
                       epochs=spec.epochs, batch_size=spec.batch_size, seed=params.seed,
                       binary=spec.is_binary, epochs_per_call=max(1, spec.epochs // 10))
        ours_seconds = time.perf_counter() - started
        rows.append({"key": key, "fit_s": fit_seconds, "ours_s": ours_seconds,
                     "fit_val": history.history["val_accuracy"][-1],
                     "ours_val": result.history[-1]["val_accuracy"]})
        print(f"{key}: fit {fit_seconds:.1f} s, ours {ours_seconds:.1f} s", flush=True)
        keras.backend.clear_session()
    return rows


class PeakMemory:
    """Samples the resident memory of every stage process under `parent`, by stage."""

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
                    if "-m" in cmd and cmd[cmd.index("-m") + 1].startswith("stages."):
                        stage = " ".join(cmd[cmd.index("-m") + 1:]).removeprefix("stages.")
                        self.peaks[stage] = max(self.peaks.get(stage, 0), child.memory_info().rss)
                except (psutil.Error, IndexError):
                    pass
            time.sleep(0.05)


def pipeline_timings() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), epochs=500)
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        started = time.perf_counter()
        process = subprocess.Popen(["dvc", "repro"], cwd=project, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        with PeakMemory(process.pid) as memory:
            output = process.communicate()[0]
        cold = time.perf_counter() - started
        if process.returncode:
            raise SystemExit(f"dvc repro failed:\n{output}")

        set_param(project, f"experiments.{CHANGED}.learning_rate", 0.002)
        started = time.perf_counter()
        changed = repro(project)
        rerun = time.perf_counter() - started
        started = time.perf_counter()
        noop = repro(project)
        noop_s = time.perf_counter() - started
        return {"cold": cold, "stages": len(stages_run(output)), "rerun": rerun,
                "rerun_stages": sorted(stages_run(changed.stdout)), "noop": noop_s,
                "noop_stages": len(stages_run(noop.stdout)), "peaks": memory.peaks}


def report(rows: list[dict], pipeline: dict) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    lines = [
        f"Machine: {os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d')}.",
        "",
        "| experiment | model.fit s | trainer s | speed-up | fit val acc | trainer val acc |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['key']} | {r['fit_s']:.1f} | {r['ours_s']:.1f} | {r['fit_s'] / r['ours_s']:.1f}× | "
                     f"{r['fit_val']:.3f} | {r['ours_val']:.3f} |")
    total_fit, total_ours = sum(r["fit_s"] for r in rows), sum(r["ours_s"] for r in rows)
    lines.append(f"| **all eleven** | {total_fit:.1f} | {total_ours:.1f} | {total_fit / total_ours:.1f}× | | |")
    peaks = pipeline["peaks"]
    biggest = max(peaks, key=peaks.get) if peaks else "n/a"
    lines += [
        "",
        "| pipeline (500 epochs, temp copy) | measured | target |",
        "|---|---:|---:|",
        f"| cold `dvc repro`, {pipeline['stages']} stages | {pipeline['cold']:.1f} s | ≤ 90 s |",
        f"| rerun after `experiments.{CHANGED}.learning_rate` changed ({', '.join(pipeline['rerun_stages'])}) "
        f"| {pipeline['rerun']:.1f} s | ≤ 15 s |",
        f"| no-op `dvc repro` ({pipeline['noop_stages']} stages ran) | {pipeline['noop']:.1f} s | ≤ 3 s |",
        f"| peak RSS of any stage ({biggest}) | {peaks.get(biggest, 0) / 2**20:.0f} MiB | ≤ 1536 MiB |",
        "",
        "| stage kind | peak RSS (max over its stages) |",
        "|---|---:|",
    ]
    for kind in ("generate", "train", "evaluate", "report"):
        values = [v for stage, v in peaks.items() if stage.split()[0] == kind]
        if values:
            lines.append(f"| {kind} | {max(values) / 2**20:.0f} MiB |")
    return "\n".join(lines) + "\n"


def main() -> None:
    rows = trainer_vs_fit()
    pipeline = pipeline_timings()
    table = report(rows, pipeline)
    print(table)
    (ROOT / "bench" / "latest.md").write_text("# Benchmark (`make bench`)\n\n" + table)


if __name__ == "__main__":
    main()
