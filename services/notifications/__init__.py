"""The notifications service: webhook endpoints, email rules, messages and their delivery."""
