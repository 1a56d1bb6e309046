"""Evaluation: metrics the project reports, computed the way their owners define them."""
