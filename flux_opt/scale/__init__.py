"""Scale: seeded synthetic instances (small to national) and batch planning of many instances."""
