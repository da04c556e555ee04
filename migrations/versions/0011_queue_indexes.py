"""queue: one author's, address's, text's or domain's comments in the queue's order, and
the score order

A page of one author's, account's or IP address's held comments read their index and
then sorted, and SQLite without statistics walked the whole status index instead (45 ms
a page at 100,000 pending); the score order sorted every pending comment (0.5 s). The
filters' indexes carry the queue's order (status, created_at, id), and the score order
has an index on the expression it sorts by.

Revision ID: 0011_queue_indexes
Revises: 0010_flag_index
Create Date: 2026-12-02 15:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_queue_indexes'
down_revision = '0010_flag_index'
branch_labels = None
depends_on = None

# Each index: its column, and the columns it had before (None: new).
WIDENED = {
    'ix_comment_email_status': ('author_email', ['author_email', 'status']),
    'ix_comment_user_status': ('user_id', ['user_id', 'status']),
    'ix_comment_ip_status': ('ip', ['ip', 'status']),
    'ix_comment_body_hash': ('body_hash', ['body_hash']),
    'ix_comment_link_domain': ('link_domain', ['link_domain']),
    'ix_comment_name_status': ('author_name', None),
}


def upgrade():
    for name, (column, before) in WIDENED.items():
        if before:
            op.drop_index(name, table_name='comment')
        op.create_index(name, 'comment', [column, 'status', 'created_at', 'id'], unique=False)
    op.create_index(
        'ix_comment_status_score_order',
        'comment',
        ['status', sa.text('coalesce(spam_score, -1.0)'), 'id'],
        unique=False,
    )


def downgrade():
    op.drop_index('ix_comment_status_score_order', table_name='comment')
    for name, (column, before) in WIDENED.items():
        op.drop_index(name, table_name='comment')
        if before:
            op.create_index(name, 'comment', before, unique=False)
