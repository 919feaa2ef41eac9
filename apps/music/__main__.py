import sys

from apps.music.cli import main

sys.exit(main())
