import sys

from graphrec.augmentation.cli import main

sys.exit(main())
