from ..common.cli import exit
from .cli import main

exit(main())
