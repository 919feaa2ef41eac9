from apps.common.cli import exit
from apps.translate.cli import main

exit(main())
