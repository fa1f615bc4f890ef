"""HTTP building blocks: the app factory, problem+json errors, middleware, auth and health."""
