"""Reports for people and files for machines: terminal renderables, HTML and Excel reports, plots,
atomic writes of plan folders."""
