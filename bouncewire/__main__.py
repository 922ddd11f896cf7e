import sys

from bouncewire.cli import main

sys.exit(main())
