"""Batch ingestion: integrators' CloudEvents applied in order, in one transaction."""
