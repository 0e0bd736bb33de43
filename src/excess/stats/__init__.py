"""excess.stats."""
