"""Convert other public news datasets (EB-NeRD, Adressa) into MIND-format folders newsforge can train on.

Each importer writes ``news.tsv``, ``behaviors.tsv`` (and ``user_profiles.tsv`` where the source has a
counterpart) plus ``import_report.json``: what was kept, what was dropped and why, with row counts.
"""
