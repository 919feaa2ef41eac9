from apps.common.cli import exit
from apps.music.cli import main

exit(main())
