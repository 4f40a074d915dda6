"""Assiette and targets: forecast releases A, exclusions B, the flux annuel C = A − B split into
integer segments F_s (largest remainder), and each réservataire's target N_r (CCH R.441-5, R.441-5-2)."""
