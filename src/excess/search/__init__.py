"""excess.search."""
