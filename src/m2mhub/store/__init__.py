"""m2mhub.store"""
