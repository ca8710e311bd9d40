"""Serving: MLflow pyfunc wrappers of the registered models (the online API lands with the serving issue)."""
