"""Domain rules as plain async functions; they raise DomainError and know nothing of GraphQL or Dramatiq."""
