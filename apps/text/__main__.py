"""Character- and word-level language models and text generation."""

from ..common.cli import exit
from .cli import main

exit(main())
