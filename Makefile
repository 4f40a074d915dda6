# Deux commandes pour un nouveau poste : `make demo` et `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installe

.PHONY: demo test install bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/flux-opt plan instances/exemple --sortie sorties/exemple

test: $(STAMP)
	$(BIN)/python -m pytest

# Long fuzz run (random, 500 damaged copies of the example): the suite runs 12 fixed ones.
fuzz: $(STAMP)
	FUZZ_EXEMPLES=$${FUZZ_EXEMPLES:-500} FUZZ_ALEATOIRE=1 $(BIN)/python -m pytest tests/test_fuzz.py -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) sorties
