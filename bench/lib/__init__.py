"""What every benchmark scenario shares: the stack, the receiver, the ledger, the results."""
