"""Calibration: the demand model's inputs measured on the bailleur's own history — the beta-binomial
empirical-Bayes shrinkage shared with the RPLS rotation (shrinkage), the estimates from one or more years of
journal (journal), and the files and page of `flux-opt calibrer` (write). Formulas: models/rpls.md."""
