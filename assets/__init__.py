"""Thin Dagster asset definitions: read inputs, call ``training/``, log to MLflow, return outputs."""
