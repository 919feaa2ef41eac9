"""Character- and word-level language models and text generation."""

from apps.common.cli import exit
from apps.text.cli import main

exit(main())
