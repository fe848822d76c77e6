"""`python -m gdl_site.cards check|import|export|lock|retire`: `gdl-ref cards` without the rest of gdl-ref."""

import sys

from .cli import main

sys.exit(main())
