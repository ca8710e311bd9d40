"""Non-learned reference rankers: the floor every model must beat."""
