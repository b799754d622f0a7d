"""seqops.validation"""
