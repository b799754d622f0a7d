"""seqops.serving"""
