"""kefu core: from a Chinese shopper message to an FAQ answer or a human agent.

This package is pure Python: it never imports FastAPI or the training CLI.
"""

from __future__ import annotations

__version__ = "0.1.0"
