"""one open handoff per session

Concurrent messages of one session could open several handoffs. Duplicates already stored are
closed as resolved with a note naming the handoff they duplicate (nothing is deleted; their
messages stay in the session), then a partial unique index makes a second open handoff of a
session impossible.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = "status IN ('waiting', 'assigned')"


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, session_id FROM handoffs WHERE {OPEN} ORDER BY session_id, id")).all()
    kept: dict[str, int] = {}
    for handoff_id, session_id in rows:
        if session_id not in kept:
            kept[session_id] = handoff_id
            continue
        conn.execute(sa.text("UPDATE handoffs SET status = 'resolved', resolved_at = CURRENT_TIMESTAMP, "
                             "note = :note WHERE id = :id"),
                     {"id": handoff_id, "note": f"duplicate of handoff {kept[session_id]}, closed by migration 0002"})
    with op.batch_alter_table("handoffs") as batch_op:
        batch_op.create_index("uq_handoffs_open_session", ["session_id"], unique=True,
                              sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))


def downgrade() -> None:
    with op.batch_alter_table("handoffs") as batch_op:
        batch_op.drop_index("uq_handoffs_open_session")
