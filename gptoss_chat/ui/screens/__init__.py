"""Modal screens, each with a typed result."""
