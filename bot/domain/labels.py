"""Labels people gave in triage, as training data for the next classifier model.

A label keeps a copy of the case's description, the resident's own words: `forget_labels`
removes those of a resident who asked to be forgotten (bot/domain/forget.py).
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Case, CategoryLabel

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


async def forget_labels(session: AsyncSession, person_id: int) -> int:
    """Delete the labels of the cases `person_id` reported (copies of their words), and unlink
    the labels they gave; how many were deleted. Before the cases are unlinked from them."""
    theirs = select(Case.id).where(Case.reporter_id == person_id)
    deleted = await session.execute(
        delete(CategoryLabel)
        .where(CategoryLabel.case_id.in_(theirs))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(CategoryLabel)
        .where(CategoryLabel.labelled_by == person_id)
        .values(labelled_by=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(deleted, "rowcount", 0) or 0)
