"""Supervised identification: low-pT electrons and jets."""
