"""counters: maintained queue counts (per status, in all and per post; flagged comments)

The rows are filled from a full count here; services/counters.py keeps them up to date.

Revision ID: 0006_counters
Revises: 0005_markdown
Create Date: 2026-11-30 20:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_counters'
down_revision = '0005_markdown'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'queue_counter',
        sa.Column('post_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('name', sa.String(length=16), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('post_id', 'name', name=op.f('pk_queue_counter')),
    )
    op.execute(
        "INSERT INTO queue_counter (post_id, name, n)"
        " SELECT post_id, status, count(*) FROM comment GROUP BY post_id, status"
    )
    op.execute(
        "INSERT INTO queue_counter (post_id, name, n)"
        " SELECT 0, status, count(*) FROM comment GROUP BY status"
    )
    op.execute(
        "INSERT INTO queue_counter (post_id, name, n)"
        " SELECT 0, 'flagged', count(DISTINCT comment_id) FROM flag WHERE NOT resolved"
    )


def downgrade():
    op.drop_table('queue_counter')
