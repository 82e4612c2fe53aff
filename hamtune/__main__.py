import sys

from hamtune.cli import main

sys.exit(main())
