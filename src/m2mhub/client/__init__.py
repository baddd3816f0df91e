"""m2mhub.client"""
