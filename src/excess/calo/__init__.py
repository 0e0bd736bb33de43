"""excess.calo."""
