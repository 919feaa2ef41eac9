"""Character- and word-level language models and text generation."""
