"""markdown: each post and comment body keeps the format it was written in

Every body stored before this revision is HTML.

Revision ID: 0005_markdown
Revises: 0004_spam
Create Date: 2026-11-30 18:25:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005_markdown'
down_revision = '0004_spam'
branch_labels = None
depends_on = None


def upgrade():
    for table in ('comment', 'post'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    'body_format',
                    sa.Enum('html', 'markdown', name='bodyformat', native_enum=False, length=16),
                    server_default='html',
                    nullable=False,
                )
            )


def downgrade():
    for table in ('post', 'comment'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('body_format')
