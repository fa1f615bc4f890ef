"""Goals' side of privacy: erasing a person, following the other services' confirmations."""
