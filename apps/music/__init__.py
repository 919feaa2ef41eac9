"""Polyphonic music modelling and generation (one-to-many)."""
