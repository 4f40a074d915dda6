"""Reports for people and files for machines: terminal renderables, HTML and Excel reports, plots,
atomic writes of plan folders.

Every Excel workbook is opened through report/workbook.py (`new_workbook`, `excel_writer`,
`workbook_bytes`): its options store text as text, so a name read from a partner's file never
becomes a live formula or link in a file the bailleur opens (tests/test_injection.py checks it).
"""
