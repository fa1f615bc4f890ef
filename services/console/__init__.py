"""The operator console: a small server-rendered web app on top of the services' public APIs."""
