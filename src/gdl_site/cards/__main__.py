"""`python -m gdl_site.cards check|import|export`: the card tools without the rest of gdl-ref."""

import sys

from .cli import main

sys.exit(main())
