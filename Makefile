# Two commands do everything on a fresh machine: `make run` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test validate robustness ui server push compare bench lock clean

$(STAMP): requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)  ## create .venv, install the pinned dependencies, pull what the team's DVC remote has (docs/team-dvc.md), run the rest of the pipeline (independent stages in parallel on Dask)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m tools.run --pull

test: $(STAMP)  ## the whole test suite (real dvc, git, MLflow, Keras, PostgreSQL and Chromium; small epochs), two modules at a time
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q -n 2 --dist loadfile --durations=25 tests

validate: $(STAMP)  ## CI's proof: static checks, dvc.lock current, full pipeline, outputs, findings
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m tools.validate

robustness: $(STAMP)  ## every finding over more base seeds (default 7 and 2026; make robustness SEEDS="7 11"): the whole pipeline in throw-away copies, one at a time; writes robustness.json
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m tools.robustness $(if $(SEEDS),--seeds $(SEEDS))

ui: $(STAMP)  ## mlflow ui on mlflow.db at 127.0.0.1:5000 (make ui PORT=5001); prints the runs-view URL
	$(PY) -m tools.ui --host 127.0.0.1 --port $(or $(PORT),5000)

server: $(STAMP)  ## the team's MLflow tracking server on PostgreSQL with logins, 127.0.0.1:5050 (make server PORT=5051; docs/team.md)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m tools.server --port $(or $(PORT),5050)

push: $(STAMP)  ## upload every cached output dvc.lock names to the team's DVC remote (dvc push; docs/team-dvc.md)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/dvc push

compare: $(STAMP)  ## DVC's experiments side by side: per experiment that differs, what changed and its headline numbers (make compare ALL=1: every experiment)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m tools.compare $(if $(ALL),--all)

bench: $(STAMP)  ## 1 vs 5 seeds, trainer vs model.fit, sequential vs parallel pipeline, where the time goes
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m tools.bench

lock:  ## regenerate requirements.txt from requirements.in in a scratch venv
	rm -rf /tmp/lock-venv && python3 -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet -r requirements.in
	(echo "# Full lock of requirements.in (pip freeze in a fresh venv; Python 3.11, linux x86_64)."; \
	 /tmp/lock-venv/bin/pip freeze) > requirements.txt

clean:
	rm -rf $(VENV)
