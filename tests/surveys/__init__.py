"""Survey tests. A package, so that test_stats.py here and tests/complaints/test_stats.py can share a name."""
