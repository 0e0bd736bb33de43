"""excess."""
