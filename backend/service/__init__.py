"""Service: `relight serve`, the ZeroMQ ROUTER, its jobs and the content-addressed asset store. Imports the
product packages and `relight_protocol`; nothing imports it but the CLI and the evaluation."""
