"""The one Stripe API version the emulator speaks (the installed SDK's ``_ApiVersion.CURRENT``)."""

API_VERSION = "2026-10-28.endive"
