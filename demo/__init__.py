"""The offline demo exchange, for `make demo` and the tests."""
