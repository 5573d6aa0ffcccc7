"""Labels people gave in triage, as training data for the next classifier model."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CategoryLabel

COLUMNS = ("case_id", "text", "label", "source", "labelled_at")


async def labels_csv(session: AsyncSession) -> tuple[str, int]:
    """CSV (text, label) with each case's latest label; train with `--text-col text
    --label-col label`. Returns the text and the number of rows."""
    latest = select(func.max(CategoryLabel.id)).group_by(CategoryLabel.case_id).scalar_subquery()
    rows = (
        await session.scalars(
            select(CategoryLabel).where(CategoryLabel.id.in_(latest)).order_by(CategoryLabel.id)
        )
    ).all()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            (row.case_id, row.text, row.category_id, row.source, row.created_at.isoformat())
        )
    return buf.getvalue(), len(rows)
