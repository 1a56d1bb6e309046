"""Model architectures, their weights registry and factories."""
