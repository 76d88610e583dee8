"""Thin resolvers: read the arguments, call a service, convert the result."""
