"""spam filter: model, lessons and each comment's score

Revision ID: 0004_spam
Revises: 0002_import
Create Date: 2026-11-30 18:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_spam'
down_revision = '0002_import'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('spam_feature',
    sa.Column('key', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('spam', sa.Integer(), nullable=False),
    sa.Column('ham', sa.Integer(), nullable=False),
    sa.Column('seen_day', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_spam_feature'))
    )
    op.create_table('spam_lesson',
    sa.Column('comment_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('label', sa.Enum('spam', 'ham', name='spamlabel', native_enum=False, length=16), nullable=False),
    sa.Column('step', sa.Float(), nullable=False),
    sa.Column('bias_step', sa.Float(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('comment_id', name=op.f('pk_spam_lesson'))
    )
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spam_score', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('spam_reasons', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.create_index('ix_comment_status_spam_score', ['status', 'spam_score', 'id'], unique=False)
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.alter_column('spam_reasons', server_default=None)


def downgrade():
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_index('ix_comment_status_spam_score')
        batch_op.drop_column('spam_reasons')
        batch_op.drop_column('spam_score')
    op.drop_table('spam_lesson')
    op.drop_table('spam_feature')
