"""The embedded stack for one machine: broker, SMTP sink and the services as plain processes."""
