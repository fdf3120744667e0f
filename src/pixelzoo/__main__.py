import sys

from pixelzoo.cli import main

sys.exit(main())
