"""Cost table writes: one module per use case."""
