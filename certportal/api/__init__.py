"""The REST API's cross-cutting pieces: tokens and service accounts, authentication,
error format, pagination, throttling. Resources live in each app's ``api/`` package."""
