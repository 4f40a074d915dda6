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

# Long fuzz run (random, 500 examples each: damaged copies of the example folder and workbook, requests
# to the negotiation page): the suite runs 12 fixed ones of each.
fuzz: $(STAMP)
	FUZZ_EXEMPLES=$${FUZZ_EXEMPLES:-500} FUZZ_ALEATOIRE=1 $(BIN)/python -m pytest tests/test_fuzz.py -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) sorties
