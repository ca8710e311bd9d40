"""Figures of the click log and of training runs, drawn with plain matplotlib (Agg backend) to PNG.

:mod:`~training.plots.click_heatmaps` (CTR by category × hour of day and × user-history length),
:mod:`~training.plots.treemap` (shown candidates and clicks by category/subcategory) and
:mod:`~training.plots.training_curves` (a run's metric histories). No Dagster or MLflow here: the assets
log the PNGs (see ``assets/data.py`` and ``orchestration/run_figures.py``).
"""
