"""The year after the plan: the events journal, counting rules and suivi, pré-orientation of each
released dwelling, re-orientation of the rest of the year, the bilan annuel, simulated event logs
(the simulated year of a plan itself is flux_opt/plan/evaluation.py)."""
