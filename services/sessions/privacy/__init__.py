"""Sessions' side of privacy: erasing what it holds about a person."""
