# The two commands of the README. Both set everything up on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test train bench soak clean chromium screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned and installed first: the machine's CPU build, not a multi-GB CUDA one.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/kefu serve --host $(HOST) --port $(PORT)

train: $(STAMP)
	$(BIN)/kefu train

# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium chromium-driver)

# Lint (ruff, the project's rules) and type checks (mypy on bot/ and api/) keep the shape; then the tests.
test: $(STAMP) chromium
	$(BIN)/ruff check bot api training tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# Regenerate docs/widget.png, docs/console.png, docs/agent-drafts.png and docs/admin-*.png (the dashboard too) from the browser stories (needs a Chinese font).
screenshots: $(STAMP) chromium
	@fc-list :lang=zh | grep -q . || (apt-get update && apt-get install -y fonts-wqy-microhei)
	KEFU_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/browser -k "story or dashboard or draft or presence"

# Bounded soak (bench/soak.py): 50,000 chat messages from 200 sessions on loopback, then stored == acknowledged.
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

# The benchmark suite (not part of the tests): results in bench/results/. wrk comes from Debian.
bench: $(STAMP)
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench
