"""Exports and reports of a plan (files, terminal renderables)."""
