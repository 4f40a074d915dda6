"""The rule registry is the one description of the families: the model, the docs and contraintes.csv agree with it."""

from pathlib import Path

from flux_opt.model import families, registry
from flux_opt.pipeline import PlanOptions, run
from flux_opt.input.schema import load_instance

ROOT = Path(__file__).resolve().parents[1]


def test_every_builder_exists_and_every_built_family_is_registered():
    for builder in registry.builders():
        assert callable(getattr(families, f"add_{builder}")), builder
    done = run(load_instance(ROOT / "instances" / "surcontraint"), PlanOptions(duals=False))
    model, result = done.model, done.result
    built = set(model.lp.families())
    assert built <= set(registry.RULE), built - set(registry.RULE)
    assert set(result.contraintes["contrainte"]) <= set(registry.names(reported=True))
    for block in model.lp.constraints:  # nature decided by the registry, not by the family function
        assert block.nature == registry.RULE[block.famille].nature


def test_every_reported_family_is_documented_with_its_name():
    text = (ROOT / "models" / "orientation.md").read_text(encoding="utf-8")
    missing = [name for name in registry.names(reported=True) if f"`{name}`" not in text]
    assert not missing, missing


def test_hard_families_carry_a_penalty_class_and_structural_ones_none():
    for rule in registry.RULES:
        assert (rule.nature == "dure") == (rule.penalty is not None), rule.name
        if rule.structural:
            assert rule.nature == "structurelle" and not rule.negotiable


# --------------------------------------------------------------------------- every facet, every family

def test_every_family_has_every_facet_its_nature_needs():
    """A family the plan lists has a sentence body; one that can be violated has a cause finder; one a
    negotiation can change has a marginal-value probe; each facet is a key of its layer's table (read
    with [] there, never .get(): a missing one would raise, so it must be caught here first)."""
    from flux_opt.explanation import marginal, sentences, shortfalls

    lacking = []
    for rule in registry.RULES:
        if rule.builder is not None and rule.reported and rule.sentence not in sentences.BODIES:
            lacking.append((rule.name, "sentence", rule.sentence))
        if rule.nature == "dure" and rule.cause not in shortfalls.FINDERS:
            lacking.append((rule.name, "cause", rule.cause))
        if (rule.negotiable or rule.builder and rule.on_attributions) and rule.probe not in marginal.PROBES:
            lacking.append((rule.name, "probe", rule.probe))
        for facet, table in (("sentence", sentences.BODIES), ("cause", shortfalls.FINDERS),
                             ("probe", marginal.PROBES)):
            value = getattr(rule, facet)
            if value is not None and value not in table:
                lacking.append((rule.name, facet, value))
        if rule.one_point not in (None, "plafond", "minimum", "tolerance"):
            lacking.append((rule.name, "one_point", rule.one_point))
    assert not lacking, lacking
    # and no facet implementation is left without a family
    for facet, table in (("sentence", sentences.BODIES), ("cause", shortfalls.FINDERS), ("probe", marginal.PROBES)):
        assert set(table) == {getattr(r, facet) for r in registry.RULES} - {None}, facet


def test_a_family_without_a_facet_fails_loudly_not_silently(monkeypatch):
    """The layers look a facet up with []: a reported family with no sentence is an error, not a
    generic line (the former `.get()` fallback)."""
    import pytest

    from flux_opt.explanation import sentences

    broken = registry.RULE[registry.PLAFOND_PREFET].__class__(**{**registry.RULE[registry.PLAFOND_PREFET].__dict__,
                                                                 "sentence": None})
    monkeypatch.setitem(registry.RULE, registry.PLAFOND_PREFET, broken)
    row = {"contrainte": registry.PLAFOND_PREFET, "valeur": 1.0, "borne_inf": 0.0, "borne_sup": 2.0}
    with pytest.raises(KeyError):
        sentences._body(row, fig=None)


def test_conformity_checks_exactly_the_families_the_registry_says():
    """conformite.csv of the example names only families whose `conformity` facet is set, and every
    such family that applies to the example (the CIA's two rules need a CIA EPCI; the example has one)."""
    from flux_opt.conformity.check import conformity, from_result

    done = run(load_instance(ROOT / "instances" / "exemple"), PlanOptions(duals=False))
    table = conformity(done.instance, from_result(done.result.plan, done.result.attributions))
    assert set(table["regle"]) == set(registry.names(conformity=True))


def _contract_words() -> set[str]:
    """Family names that are also words of the data contract (a file of the instance folder or a
    column): those literals mostly mean the file or the column, so they are not counted below."""
    from flux_opt.input.raw import TABLES
    from flux_opt.input.schema import ReservataireRow

    return {name for name in registry.RULE if name in TABLES or name in ReservataireRow.model_fields}


def test_a_family_name_is_spelled_in_at_most_three_package_files():
    """Every other module takes the stable names from the registry's constants (a rename is one edit)."""
    import ast

    package = ROOT / "flux_opt"
    files: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in registry.RULE:
                files.setdefault(node.value, set()).add(str(path.relative_to(package)))
    exempt = _contract_words()
    assert exempt == {registry.DEMANDE, registry.MIXITE, registry.EXCLUSIONS, registry.TERRITOIRE}
    spread = {name: sorted(where) for name, where in files.items() if name not in exempt and len(where) > 3}
    assert not spread, spread
