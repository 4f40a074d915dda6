"""The orientation model: plain tables from the instance, one function per constraint family, the rule
registry, a small labelled linear program, its HiGHS and Pyomo renderings, and the solve.
Nothing outside this package talks to a solver."""
