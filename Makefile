# Two entry points on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED_DATA ?= ../shared/data
DEMO_OUT ?= demo-output

.PHONY: install system-deps demo test lint bench lock clean

# Debian tools: dcmtk is the readers' codec fallback (and makes test files in every transfer
# syntax); dicom3tools' dciodvfy validates the DICOM angioscribe writes; Orthanc is the PACS the
# service tests store into and receive from; PostgreSQL backs the queue test by URL;
# fonts-noto-cjk renders Japanese in the report PDF and the review page; Chromium and its driver
# run the review page's browser tests.
DEBIAN_PACKAGES := dcmtk dicom3tools orthanc postgresql fonts-noto-cjk chromium chromium-driver
system-deps:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "warning: not root; install Debian's$$missing by hand"; fi; fi

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: system-deps $(STAMP)

demo: install
	$(PY) -m angioscribe.demo --data $(SHARED_DATA) --out $(DEMO_OUT)

test: install
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: install
	$(VENV)/bin/ruff check src tests bench

bench: install
	$(PY) bench/run.py

# Re-resolve the full dependency set after changing pyproject.toml (a dry run: what a fresh
# venv would get, not whatever else is installed in this one).
lock: install
	$(PY) -m pip install -q --dry-run --ignore-installed --report .lock-report.json -c constraints.txt -e '.[dev]'
	{ echo '# Full resolved set for Python 3.11 (regenerate: make lock). Direct deps are pinned in pyproject.toml.'; \
	  $(PY) -c "import json; r = json.load(open('.lock-report.json')); \
	  print('\n'.join(sorted(f\"{i['metadata']['name']}=={i['metadata']['version']}\" for i in r['install'] \
	  if i['metadata']['name'].lower() != 'angioscribe')))"; } > constraints.txt
	rm -f .lock-report.json

clean:
	rm -rf $(VENV) $(DEMO_OUT)
