"""author counters: each author's comments by status and first comment, maintained

The rows are filled from a full count here; services/counters.py keeps them up to date.

Revision ID: 0009_author_counters
Revises: 0008_cache
Create Date: 2026-12-01 08:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_author_counters'
down_revision = '0008_cache'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'author_counter',
        sa.Column('author', sa.String(length=300), nullable=False),
        sa.Column('approved', sa.Integer(), nullable=False),
        sa.Column('pending', sa.Integer(), nullable=False),
        sa.Column('spam', sa.Integer(), nullable=False),
        sa.Column('rejected', sa.Integer(), nullable=False),
        sa.Column('first_seen', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('author', name=op.f('pk_author_counter')),
    )
    # Accounts by their id, guests by their email address (services/counters.py author_of).
    op.execute(
        "INSERT INTO author_counter (author, approved, pending, spam, rejected, first_seen)"
        " SELECT CASE WHEN user_id IS NULL THEN 'email:' || author_email"
        " ELSE 'user:' || CAST(user_id AS VARCHAR(20)) END,"
        " sum(CASE WHEN status = 'approved' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN status = 'spam' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END),"
        " min(created_at)"
        " FROM comment GROUP BY 1"
    )


def downgrade():
    op.drop_table('author_counter')
