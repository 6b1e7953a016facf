"""Fault injection and hostile inputs shared by the tests and `scripts/reliability_record.py`
(which puts tests/ on sys.path to import this package, and nothing else from tests/)."""
