"""m2mhub.lab"""
