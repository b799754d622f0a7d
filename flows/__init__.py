"""seqops.flows"""
