"""tap-quay: a Singer tap for Quay container registries."""
