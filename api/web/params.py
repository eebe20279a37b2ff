"""Path and query parameter types shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

#: Row ids are `Integer` columns, 32-bit signed on PostgreSQL: a larger id in a URL is
#: refused as invalid input (422) instead of overflowing the database driver (a 500).
MAX_ROW_ID = 2**31 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="row id")]
