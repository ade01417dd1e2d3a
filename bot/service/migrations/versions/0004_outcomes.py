"""what came of conversations: 有帮助 / 没帮助 on the bot's answers, 1-5 on a resolved handoff, orders;
the bot's action as a column, and indexes of shoppers' messages and the bot's actions by time

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The figures read messages by role and time, the bot's by what it did: a column of its own
    # (filled from `extra` for the messages already stored) and indexes that hold all they read.
    op.add_column("messages", sa.Column("action", sa.String(length=16), nullable=True))
    path = "json_extract(extra, '$.action')" if op.get_bind().dialect.name == "sqlite" else "extra->>'action'"
    op.execute(f"UPDATE messages SET action = {path} WHERE role = 'bot' AND extra IS NOT NULL")
    op.create_index("ix_messages_shopper_time", "messages", ["created_at", "session_id", "role"],
                    sqlite_where=sa.text("role = 'shopper'"), postgresql_where=sa.text("role = 'shopper'"))
    op.create_index("ix_messages_action_time", "messages", ["action", "created_at", "intent"],
                    sqlite_where=sa.text("action IS NOT NULL"), postgresql_where=sa.text("action IS NOT NULL"))
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_feedback_session_id", "feedback", ["session_id"])
    op.create_index("ix_feedback_at", "feedback", ["at"])
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoffs.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("handoff_id"),
    )
    op.create_index("ix_ratings_session_id", "ratings", ["session_id"])
    op.create_index("ix_ratings_at", "ratings", ["at"])
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    op.create_index("ix_orders_session_id", "orders", ["session_id"])
    op.create_index("ix_orders_at", "orders", ["at"])


def downgrade() -> None:
    op.drop_index("ix_orders_at", table_name="orders")
    op.drop_index("ix_orders_session_id", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_ratings_at", table_name="ratings")
    op.drop_index("ix_ratings_session_id", table_name="ratings")
    op.drop_table("ratings")
    op.drop_index("ix_feedback_at", table_name="feedback")
    op.drop_index("ix_feedback_session_id", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_messages_action_time", table_name="messages")
    op.drop_index("ix_messages_shopper_time", table_name="messages")
    op.drop_column("messages", "action")
