"""excess.cli."""
