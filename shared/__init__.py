"""Followthrough's common library: the building blocks every service stands on.

Nothing in this package does I/O or reads the environment at import time; each
piece is built by a service's composition root from that service's settings.
"""
