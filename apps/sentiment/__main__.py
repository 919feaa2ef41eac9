from apps.common.cli import exit
from apps.sentiment.cli import main

exit(main())
