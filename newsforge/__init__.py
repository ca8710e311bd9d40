"""The ``newsforge`` command line (data, score, report); the platform itself lives in the sibling packages."""
