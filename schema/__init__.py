"""The GraphQL schema: types here, resolvers in `resolvers/`, assembled in `schema.root`."""
