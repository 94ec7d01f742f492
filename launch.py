#!/usr/bin/env python
"""Command line for xferlab experiments (a thin layer over ``xferlab.launch``).

  python launch.py experiments/quickstart.py --workdir runs/quickstart
  python launch.py experiments/quickstart.py:dann --set transfer.lam=0.3 --workdir runs/qs-dann
  python launch.py experiments/quickstart.py:dann --sweep transfer.lam=0,0.1,1 --workdir runs/sweep
"""

import sys

from xferlab.launch import main

if __name__ == "__main__":
  sys.exit(main())
