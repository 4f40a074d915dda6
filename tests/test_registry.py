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
