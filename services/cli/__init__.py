"""``followthrough``: the operator's command line."""
