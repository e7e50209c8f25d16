"""Runs the black-box API tests against a private PostgreSQL cluster.

usage: python3 tests/api/run.py [--ledgerd PATH] [PATTERN ...]
Prints one closing line 'api: N passed, N failed'; exits non-zero on any
failure or error.
"""
import argparse
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ledgerd")
    ap.add_argument("patterns", nargs="*", default=["test_*.py"])
    args = ap.parse_args()
    if args.ledgerd:
        os.environ["LEDGERD"] = os.path.abspath(args.ledgerd)
    import harness

    here = os.path.dirname(os.path.abspath(__file__))
    suite = unittest.TestSuite(
        unittest.defaultTestLoader.discover(here, pattern=p) for p in args.patterns)
    started = time.time()
    try:
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    finally:
        harness.shutdown()
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("api tests took %.1f s" % (time.time() - started))
    # Skips are not passes: a skipped test fails the run.
    print("api: %d passed, %d failed" % (passed, failed + skipped))
    return 0 if failed == 0 and skipped == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
