"""The resource namespaces of `Tollgate`, one per section of the API."""
