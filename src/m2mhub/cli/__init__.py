"""m2mhub.cli"""
