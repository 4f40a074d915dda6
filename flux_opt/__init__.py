"""flux-opt: annual orientation of the social-housing flux to réservataires."""

__version__ = "0.1.0"
