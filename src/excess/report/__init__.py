"""excess.report."""
