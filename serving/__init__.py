"""Online recommendation API over the registered models. Not built yet: it lands with the serving issue."""
