"""`flux-opt negocier`: a local web page where negotiators move a rate and see who gains what."""
