"""Serving: the MLflow pyfunc wrappers the models are registered as (``prec_models``, ``ctr_model``,
``ranking_model``, ``query_generator``, ``ranker_model``), the per-request CTR scorer (``ctr_request``) and
the online service of ``newsforge serve`` (``service``)."""
