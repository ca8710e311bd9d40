"""Dagster code location of newsforge: definitions, partitions, resources, IO manager, jobs, schedules, sensors."""
