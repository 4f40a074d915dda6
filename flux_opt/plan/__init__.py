"""The plan as a result: tables (plan, attributions, objectifs, contraintes), statuses and summary;
the spreadsheet method as a baseline; reading a plan folder back."""
