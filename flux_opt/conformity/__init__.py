"""Conformity of a plan to the law, re-checked from the files alone (`flux-opt controler`).

Shares no code with the model nor with the assiette/targets computation: the flux, the caps and
every legal rule are recomputed here from the instance, so that a bug there cannot hide itself.
"""
