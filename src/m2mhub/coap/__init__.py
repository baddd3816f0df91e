"""m2mhub.coap"""
