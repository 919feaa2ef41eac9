"""Pieces shared by the apps."""
