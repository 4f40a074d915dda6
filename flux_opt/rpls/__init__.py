"""RPLS: a bailleur's RPLS extract (répertoire des logements locatifs des bailleurs sociaux, CCH R.411-3)
turned into an instance's parc — column spellings and code tables (columns), reading and checking one
line per dwelling (read), the rotation of the bailleur's own leases shrunk towards wider areas
(rotation), the files written (write), and a seeded synthetic extract for tests and benchmarks
(synthetic). Formulas: models/rpls.md."""
