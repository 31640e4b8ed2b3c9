"""test.py for the tests, loaded one way: by path, as scripts/console.py loads it.

`import test` finds the standard library's regression-test package wherever the checkout is
not first on sys.path; every test calls and patches this one module object instead.
"""
from scripts.console import load_test_script

test_script = load_test_script()
