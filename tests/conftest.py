"""Settings shared by every test module."""

import sys

from rulelang.deep import RECURSION_LIMIT

# rulelang raises the recursion limit when it first runs a command (see rulelang/deep.py);
# raised here before any test, hypothesis sees it unchanged from test to test.
sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
