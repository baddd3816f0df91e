"""m2mhub.net"""
