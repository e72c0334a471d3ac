"""Data: the real corpus, evaluation sequences, token frequencies."""
