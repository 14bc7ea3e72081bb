# Two entry points (see README): `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lstm-population venv clean

$(BIN)/memhw: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/memhw

venv: $(BIN)/memhw

demo: venv
	$(BIN)/memhw demo

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python scripts/bench.py

# LSTM over chip populations (20 chips x 3 model seeds per row; ~45 min on 2 cores)
lstm-population: venv
	$(BIN)/python scripts/lstm_population.py

clean:
	rm -rf $(VENV) build *.egg-info
