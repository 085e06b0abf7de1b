import sys

from gan2d.cli import main

sys.exit(main())
