"""Notifications' side of privacy: erasure, suppression of erased addresses."""
