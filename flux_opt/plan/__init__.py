"""The plan as a result: tables (plan, attributions, objectifs, contraintes), statuses and summary;
the spreadsheet method as a baseline; reading a plan folder back; the plan lived — its simulated
year (evaluation.py: `flux-opt evaluer`, `plan --evaluer`)."""
