import sys

from apps.tagging.cli import main

sys.exit(main())
