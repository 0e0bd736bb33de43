"""excess.models."""
