"""The offline demo exchange, for `make demo` and the tests."""

DEMO_PORT = 9000  # the demo exchange's default port (and its control API's)
