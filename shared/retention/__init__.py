"""Retention: how long each kind of record is kept, per tenant, and the purger that enforces it."""
