"""Services of the billing app (see ARCHITECTURE.md, 'Inside an app')."""
