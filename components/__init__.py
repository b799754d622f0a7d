"""seqops.components"""
