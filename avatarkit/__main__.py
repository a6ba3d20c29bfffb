import sys

from avatarkit.cli import main

sys.exit(main())
