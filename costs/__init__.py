"""What the tenant's own product costs it: versioned price tables per project (issue #54)."""
