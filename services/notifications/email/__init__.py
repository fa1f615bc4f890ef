"""The email channel: rules, rendering, SMTP, digest, preferences and unsubscribes."""
