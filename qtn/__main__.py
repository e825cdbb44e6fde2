import sys

from qtn.cli import main

sys.exit(main())
