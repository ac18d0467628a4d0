"""Torch builders, kept apart from the pure-Python spaces so that encoding never imports torch."""
