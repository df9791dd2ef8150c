import os
import sys

# Run against the source tree's package unless robustagg is installed.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
