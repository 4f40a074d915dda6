"""The events journal of the year: event models, history replay, storage and locking, derived views."""
