from apps.common.cli import exit
from apps.tagging.cli import main

exit(main())
