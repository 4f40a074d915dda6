"""What-if negotiation: scenarios as TOML overrides, side-by-side comparison, parameter sweeps
that re-solve one built model."""
