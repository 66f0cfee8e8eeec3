"""``python -m placer.api module:function --value REF --uri REF …``: a function job's program
(see :func:`placer.api.run_function`)."""

import sys

from placer.api import run_function

if __name__ == "__main__":
    sys.exit(run_function(sys.argv[1:]))
