"""Neural machine translation with an attentional encoder-decoder (sequence to sequence)."""
