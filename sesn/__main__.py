import sys

from sesn.cli import main

sys.exit(main())
