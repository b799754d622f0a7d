"""seqops.registry"""
