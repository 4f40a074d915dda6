"""Command line: `flux-opt COMMANDE`. One module per capability parses arguments, calls one function
and prints with rich; `main` registers them all."""
