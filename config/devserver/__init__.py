"""The development server of `make demo` and local work (installed by config.settings.local only)."""
