"""m2mhub.trace"""
