"""Sentence and document sentiment classification (many-to-one)."""
