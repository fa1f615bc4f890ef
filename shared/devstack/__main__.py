"""``python -m shared.devstack``: run the embedded stack (what ``make run`` does)."""

from shared.devstack.stack import main

main()
