"""Command line: `flux-opt COMMANDE`. One module per capability parses arguments, calls one function
and prints with rich; `main` registers them all.

Each command imports what it calls inside its own function: `flux-opt --help`, `schema` or a
mistyped option answer in half a second instead of loading pandas, the solver and the report
(several seconds). This is the one package where imports inside functions are the rule; elsewhere
each one says why (`# lazy: …`, tests/test_architecture.py)."""
