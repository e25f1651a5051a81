"""The cost tables' API: `/cost_tables`."""
