"""Measurements (torch): the study of one subject, the cache, activations, influence, heads, weights."""
