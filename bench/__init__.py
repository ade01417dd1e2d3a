"""kefu benchmark suite: `python -m bench [--quick]` (see bench/README.md). Not part of the tests."""
