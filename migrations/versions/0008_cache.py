"""cache: page versions, bumped with every change a reader could see

Revision ID: 0008_cache
Revises: 0007_sanitizer
Create Date: 2026-11-30 20:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_cache'
down_revision = '0007_sanitizer'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'page_version',
        sa.Column('scope', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('changed_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('scope', name=op.f('pk_page_version')),
    )


def downgrade():
    op.drop_table('page_version')
