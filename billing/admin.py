"""Admin of the billing app (see ARCHITECTURE.md, 'Inside an app')."""
