"""sanitizer: an index for the duplicate check of every comment submission

SQLite without ANALYZE statistics answered the check (same post, same body fingerprint)
through a post_id index, reading every comment of the post on each submission.

Revision ID: 0007_sanitizer
Revises: 0006_counters
Create Date: 2026-11-30 20:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007_sanitizer'
down_revision = '0006_counters'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.create_index('ix_comment_post_body_hash', ['post_id', 'body_hash'], unique=False)


def downgrade():
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_index('ix_comment_post_body_hash')
