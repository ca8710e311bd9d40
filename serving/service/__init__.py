"""``newsforge serve``: the online service answering from the MLflow registry's champions.

Modules: ``server`` (options, start-up checks, uvicorn), ``app`` (the routes), ``scoring_routes`` (the two
scoring routes answered in front of FastAPI's middleware stack), ``champions`` (loading the
``champion`` versions and reloading them when the alias moves), ``rank_batching`` (``/v1/rank`` requests
arriving together share one model forward), ``store_status`` (the candidate store's version), ``schemas``
(request parsing and validation errors naming the field), ``limits`` (body and list size limits),
``prometheus`` (counters, latency histograms and their text format), ``http_protocol`` (uvicorn's protocol
sending each response in one write).
"""
