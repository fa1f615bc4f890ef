"""Privacy building blocks every service shares: person keys, scrubbing, platform rows."""
