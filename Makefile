# Two entry points (see README): `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lstm-population venv clean

# the C firmware core's host module is compiled by the install: rebuild when its sources change
$(BIN)/memhw: pyproject.toml setup.py $(wildcard firmware/*/*.c firmware/*/*.h firmware_protocol/c/*.c firmware_protocol/c/*.h)
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/memhw

venv: $(BIN)/memhw

demo: venv
	$(BIN)/memhw demo

# one BLAS thread: the emulators' small matrix products gain nothing from more, and on a
# busy 2-core machine threaded BLAS makes the pty/TCP tests many times slower
test: venv
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python scripts/bench.py

# LSTM over chip populations (20 chips x 3 model seeds per row; ~45 min on 2 cores)
lstm-population: venv
	$(BIN)/python scripts/lstm_population.py

clean:
	rm -rf $(VENV) build *.egg-info
