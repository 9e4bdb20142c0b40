# tests/net/: codec unit tests (see net/).
