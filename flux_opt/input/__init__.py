"""Input: read an instance (CSV folder + instance.toml, or one .xlsx workbook), validate every row
(pydantic models of the data contract) and cross-check the tables. `schema.load_instance` is the one
instance reader of the project."""
