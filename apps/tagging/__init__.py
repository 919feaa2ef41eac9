"""Sequence tagging (many-to-many): POS tags, chunks, named entities."""
