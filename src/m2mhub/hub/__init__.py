"""m2mhub.hub"""
