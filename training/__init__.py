"""Plain-Python core of newsforge: data, models, training loops and metrics (no Dagster imports)."""
