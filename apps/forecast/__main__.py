from apps.common.cli import exit
from apps.forecast.cli import main

exit(main())
