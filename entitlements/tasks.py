"""Tasks of the entitlements app (see ARCHITECTURE.md, 'Inside an app')."""
