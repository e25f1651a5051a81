"""Selectors of the webhooks app (see ARCHITECTURE.md, 'Inside an app')."""
