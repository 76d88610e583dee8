"""Dramatiq actors: thin, idempotent, taking ids, each doing one service call."""
