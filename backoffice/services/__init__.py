"""The back office's use cases that gather several domains: one module per use case."""
