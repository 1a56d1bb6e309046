"""One training loop (accelerate) and the task recipes that plug into it."""
