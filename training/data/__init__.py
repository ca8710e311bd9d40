"""MIND-format data: reading, validation, typed parquet tables, daily partitions and the demo generator."""
