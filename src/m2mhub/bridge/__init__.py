"""m2mhub.bridge: the hub's CoAP resources, sharing the broker's topic space."""
