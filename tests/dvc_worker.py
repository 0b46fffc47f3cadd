"""A long-lived `dvc` for one sandbox project: the tests' `dvc repro`, `status`, `metrics` and the
other commands of tests/sandbox.py's IN_WORKER, run again and again in one process, as `make
run`'s stage workers run stages (tools/stage_worker.py: DVC's own CLI entry point, this project's
stage commands run in the same process).

Why: most of a sandbox's `dvc repro` is start-up, not work. Measured per stage in a process of its
own (3 epochs): `train@` 3.9 s, nearly all TensorFlow's import; `evaluate@` 4.5 s, 1.7 s of it
imports; and 1.5 s to start `dvc` itself. Here each is paid once per sandbox (what that saves of
`make test`: README, Performance, "The tests").

Started by tests/sandbox.py as `python -c <this file>` in the project's root, so that `stages`,
`intuition` and `tools` are imported from the project (its copy of the code). One request per
line on stdin, `{"args": [...], "env": {...}, "stdout": "<path>", "stderr": "<path>"}`, answered
with `{"returncode": N}` once `dvc <args>` has finished with the environment `env`, its output in
the two files. The end of stdin ends it. What must be a process of its own (a killed `dvc`,
Ctrl-C, `dvc exp run`'s queue, plain `dvc repro` as a user runs it) the tests still start as one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    from dvc.cli import main as dvc

    from tools.stage_worker import exit_at_once, hook_dvc, output_to

    replies = os.fdopen(os.dup(1), "w")  # fds 1 and 2 go to each request's files
    hook_dvc()
    for line in sys.stdin:
        request = json.loads(line)
        os.environ.clear()
        os.environ.update(request["env"])
        with output_to(Path(request["stdout"]), Path(request["stderr"])):
            code = dvc(request["args"])
        replies.write(json.dumps({"returncode": code}) + "\n")
        replies.flush()
    replies.close()
    exit_at_once(0)  # as a stage worker ends: without 1.3 s of finalisation that no test needs


if __name__ == "__main__":
    sys.exit(main())
